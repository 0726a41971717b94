# zkml images.
#   CPU (default):  docker build -t zkml .
#   CUDA + ICICLE:  docker build --target cuda -t zkml:cuda .
# Both run `zkml serve` as a non-root user with a health check on /healthz.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/zkml ./cmd/zkml

FROM debian:bookworm-slim AS cpu
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/zkml --create-home zkml
COPY --from=build /out/zkml /usr/local/bin/zkml
COPY examples /usr/share/zkml/examples
USER zkml
WORKDIR /var/lib/zkml
ENV ZKML_DATA_DIR=/var/lib/zkml
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["zkml"]
CMD ["serve", "--addr", ":8080"]

# GPU build: ICICLE's native libraries are built from the Go module's sources
# (scripts/build-icicle.sh, CUDA arch 90 for H100) and zkml is built with -tags icicle.
FROM nvidia/cuda:12.6.3-devel-ubuntu24.04 AS cuda-build
ARG GO_VERSION
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl git cmake build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN curl -fsSL https://go.dev/dl/go${GO_VERSION}.linux-amd64.tar.gz | tar -C /usr/local -xz
ENV PATH=/usr/local/go/bin:$PATH
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN scripts/build-icicle.sh /opt/icicle \
    && CGO_ENABLED=1 CGO_LDFLAGS="-L/opt/icicle/lib" go build -tags icicle -trimpath -o /out/zkml ./cmd/zkml

FROM nvidia/cuda:12.6.3-runtime-ubuntu24.04 AS cuda
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/zkml --create-home zkml
COPY --from=cuda-build /opt/icicle/lib /opt/icicle/lib
COPY --from=cuda-build /out/zkml /usr/local/bin/zkml
ENV LD_LIBRARY_PATH=/opt/icicle/lib ICICLE_BACKEND_INSTALL_DIR=/opt/icicle/lib/backend ZKML_DATA_DIR=/var/lib/zkml
USER zkml
WORKDIR /var/lib/zkml
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["zkml"]
CMD ["serve", "--addr", ":8080", "--device", "gpu"]

# The default target is the CPU image.
FROM cpu
