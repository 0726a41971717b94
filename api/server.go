package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zkml/zkml/internal/artifact"
	"github.com/zkml/zkml/internal/store"
)

// Queue accepts jobs recorded in the store for execution. Enqueue is idempotent per
// job ID; a job whose Enqueue failed is picked up later by the workers' sweeper.
type Queue interface {
	Enqueue(ctx context.Context, j *store.Job) error
}

// Workspaces maps a model to its working directory for the Engine (materializing it
// if needed).
type Workspaces interface {
	Dir(ctx context.Context, m *store.Model) (string, error)
}

// Limits bound request sizes; exceeding one answers 413.
type Limits struct {
	MaxModelBytes int64 // ONNX upload, default 64 MiB
	MaxBodyBytes  int64 // any other JSON body, default 1 MiB
	// BodyTimeout bounds the time an authenticated client may take to send its request
	// body once its headers are in (408 past it); default 5 minutes, which a 64 MiB
	// model needs at about 220 KB/s.
	BodyTimeout time.Duration
}

// Config is what New needs.
type Config struct {
	Store      store.Store
	Queue      Queue
	Engine     Engine
	Blobs      artifact.Store
	Workspaces Workspaces
	// Ceremonies runs Groth16 phase-2 ceremonies (nil: the ceremony endpoints answer 503).
	Ceremonies Ceremonies
	// AdminKey enables the key management endpoints; empty disables them.
	AdminKey string
	Limits   Limits
	Logger   *slog.Logger
	// Registry receives the HTTP metrics; Metrics (e.g. promhttp) is served at /metrics.
	Registry prometheus.Registerer
	Metrics  http.Handler
	// Ready reports whether the service can take traffic (/readyz); nil means Store.Ping.
	Ready func(ctx context.Context) error
	// AllowPrivateWebhooks accepts webhook URLs on loopback and private addresses
	// (tests, trusted networks); by default they are refused with 400.
	AllowPrivateWebhooks bool
}

// Server is the HTTP API.
type Server struct {
	store     store.Store
	queue     Queue
	engine    Engine
	blobs     artifact.Store
	ws        Workspaces
	ceremony  Ceremonies
	adminHash string
	limits    Limits
	log       *slog.Logger
	metrics   http.Handler
	ready     func(ctx context.Context) error
	router    chi.Router

	allowPrivateWebhooks bool

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New builds the server and its routes.
func New(cfg Config) *Server {
	s := &Server{
		store: cfg.Store, queue: cfg.Queue, engine: cfg.Engine, blobs: cfg.Blobs, ws: cfg.Workspaces, ceremony: cfg.Ceremonies,
		limits: cfg.Limits, log: cfg.Logger, metrics: cfg.Metrics, ready: cfg.Ready,
		allowPrivateWebhooks: cfg.AllowPrivateWebhooks,
	}
	if cfg.AdminKey != "" {
		s.adminHash = HashKey(cfg.AdminKey)
	}
	if s.limits.MaxModelBytes <= 0 {
		s.limits.MaxModelBytes = 64 << 20
	}
	if s.limits.MaxBodyBytes <= 0 {
		s.limits.MaxBodyBytes = 1 << 20
	}
	if s.limits.BodyTimeout <= 0 {
		s.limits.BodyTimeout = 5 * time.Minute
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.ready == nil {
		s.ready = func(ctx context.Context) error { return s.store.Ping(ctx) }
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zkml_http_requests_total", Help: "HTTP requests by route pattern, method and status code.",
	}, []string{"route", "method", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "zkml_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method"})
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(s.requests, s.latency)
	}
	s.router = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Router exposes the chi router (for route listing in tests and docs).
func (s *Server) Router() chi.Routes { return s.router }

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(s.bodies, middleware.RequestID, middleware.Recoverer, s.observe)
	r.NotFound(s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(KindNotFound, "not_found", "no route for %s", r.URL.Path)
	}))
	r.MethodNotAllowed(s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(KindMethodNotAllowed, "method_not_allowed", "method %s not allowed on %s (allowed: %s)",
			r.Method, r.URL.Path, strings.Join(s.allowed(r), ", "))
	}))

	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.adapt(s.readyz))
	r.Get("/metrics", func(w http.ResponseWriter, r *http.Request) {
		if s.metrics == nil {
			http.NotFound(w, r)
			return
		}
		s.metrics.ServeHTTP(w, r)
	})

	r.Route("/v1", func(r chi.Router) {
		r.Get("/openapi.json", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(openAPIDoc)
		})

		r.Post("/keys", s.admin(s.createKey))
		r.Get("/keys", s.admin(s.listKeys))
		r.Delete("/keys/{id}", s.admin(s.revokeKey))

		r.Post("/models", s.tenant(s.createModel))
		r.Get("/models", s.tenant(s.listModels))
		r.Get("/models/{id}", s.tenant(s.getModel))
		r.Delete("/models/{id}", s.tenant(s.deleteModel))
		r.Post("/models/{id}/setup", s.tenant(s.setupModel))
		r.Post("/models/{id}/proofs", s.tenant(s.createProof))
		r.Get("/models/{id}/verifier.sol", s.tenant(s.verifierSol))
		s.ceremonyRoutes(r)

		r.Get("/jobs", s.tenant(s.listJobs))
		r.Get("/jobs/{id}", s.tenant(s.getJob))
		r.Post("/jobs/{id}/cancel", s.tenant(s.cancelJob))
		r.Post("/jobs/{id}/webhook", s.tenant(s.redeliverWebhook))

		r.Get("/proofs/{id}", s.tenant(s.getProof))
		r.Post("/verify", s.tenant(s.verify))
	})
	return r
}

// observe logs and counts requests by route pattern (not raw path, to bound cardinality).
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		d := time.Since(start)
		s.requests.WithLabelValues(route, r.Method, strconv.Itoa(ww.Status())).Inc()
		s.latency.WithLabelValues(route, r.Method).Observe(d.Seconds())
		s.log.DebugContext(r.Context(), "http", "method", r.Method, "route", route, "status", ww.Status(),
			"dur", d, "request_id", middleware.GetReqID(r.Context()))
	})
}

// allowed lists the methods routed for r's path, for the Allow header of a 405.
func (s *Server) allowed(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if s.router.Match(chi.NewRouteContext(), m, r.URL.Path) {
			out = append(out, m)
		}
	}
	return out
}

// ErrShuttingDown is what a Config.Ready function returns while the process drains.
var ErrShuttingDown = errors.New("shutting down")

// readyz answers 503 while the service cannot take traffic. Only the admin is told
// why: the cause of a database failure names hosts, ports and users.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	err := s.ready(ctx)
	if err == nil {
		return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
	msg := "database unavailable"
	if errors.Is(err, ErrShuttingDown) {
		msg = "shutting down"
	} else if p, aerr := s.authenticate(r); aerr == nil && p.admin {
		msg += ": " + err.Error()
	}
	return &Error{Kind: KindUnavailable, Code: "not_ready", Message: msg, Err: err}
}

// trackedBody records whether a request body was read to its end.
type trackedBody struct {
	io.ReadCloser
	eof bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// bodyUnread reports whether r may still have body bytes on the wire.
func bodyUnread(r *http.Request) bool {
	b, ok := r.Body.(*trackedBody)
	return ok && r.ContentLength != 0 && !b.eof
}

// bodies bounds the time a client may take to send its request body (BodyTimeout from
// the moment the handler starts, past which reads fail and the request answers 408),
// and tracks whether the body was read, so that an error answered without reading it
// (such as a 401: keys are checked before any body is read) closes the connection
// rather than wait for a body that may never come.
func (s *Server) bodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		// Not every ResponseWriter supports deadlines (httptest.ResponseRecorder does not).
		deadline := rc.SetReadDeadline(time.Now().Add(s.limits.BodyTimeout)) == nil
		tb := &trackedBody{ReadCloser: r.Body}
		r = r.WithContext(r.Context()) // a copy: net/http keeps its own view of the body
		r.Body = tb
		next.ServeHTTP(w, r)
		if deadline && tb.eof {
			// Lift the deadline for the rest of this exchange (net/http sets its own for
			// the next request). A body left unread keeps it: net/http drains the body
			// after the handler, and that must not wait for ever either.
			rc.SetReadDeadline(time.Time{})
		}
	})
}

// bodyError classifies an error met while reading a request body: too large (413), not
// sent within BodyTimeout (408), or otherwise malformed (400, with what).
func bodyError(what string, err error) error {
	switch {
	case isTooBig(err):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errorf(KindTimeout, "body_timeout", "the request body was not received in time")
	}
	return badRequest("%s: %v", what, err)
}

// readBody reads a JSON body under the size limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, s.limits.MaxBodyBytes)
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyError("reading body", err)
	}
	return b, nil
}
