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

# GPU build: ICICLE's native libraries (CPU and CUDA backends) are built from the Go
# module's sources by scripts/build-icicle.sh, as on a CI or GPU machine (CUDA arch 90 for
# H100/H200 unless --build-arg CUDA_ARCH=...), and zkml is built with -tags icicle.
FROM golang:${GO_VERSION}-bookworm AS go

FROM nvidia/cuda:12.6.3-devel-ubuntu24.04 AS cuda-build
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates git cmake build-essential patch \
    && rm -rf /var/lib/apt/lists/*
# The Go toolchain of the CPU image's base (go.dev/dl names releases go1.26.0, not go1.26).
COPY --from=go /usr/local/go /usr/local/go
ENV PATH=/usr/local/go/bin:$PATH
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG CUDA_ARCH=90
RUN eval "$(CUDA_ARCH=${CUDA_ARCH} scripts/build-icicle.sh --cuda /opt/icicle)" \
    && go build -tags icicle -trimpath -o /out/zkml ./cmd/zkml

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
