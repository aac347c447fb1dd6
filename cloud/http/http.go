// Package http serves the JSON API of varco-cloud under /api/v1 with chi,
// plus /healthz and /metrics. Handlers decode and validate the transport,
// call the services of package cloud with the authenticated operator in the
// context, and encode the result; they hold no business rules.
//
// Errors are JSON objects {"error": {"code", "message", "field"}} with the
// HTTP status given by codes. Edits carry the version the client read, in an
// If-Match header ("3" or W/"3") or a "version" field; a stale version gives
// 412, a missing one 428.
package http

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"varco.dev/cloud"
)

//go:embed openapi.json
var openapiFS embed.FS

// MaxBodyBytes bounds JSON request bodies; MaxImportBytes bounds CSV imports.
const (
	MaxBodyBytes   = 1 << 20
	MaxImportBytes = 32 << 20
)

// codes maps application error codes to HTTP statuses.
var codes = map[string]int{
	cloud.ECONFLICT:     http.StatusConflict,
	cloud.EINVALID:      http.StatusBadRequest,
	cloud.ENOTFOUND:     http.StatusNotFound,
	cloud.EUNAUTHORIZED: http.StatusUnauthorized,
	cloud.EFORBIDDEN:    http.StatusForbidden,
	cloud.EPRECONDITION: http.StatusPreconditionFailed,
	cloud.EPRECONDREQ:   http.StatusPreconditionRequired,
	cloud.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	cloud.EINTERNAL:     http.StatusInternalServerError,
}

// ErrorStatusCode returns the HTTP status for an application error code.
func ErrorStatusCode(code string) int {
	if v, ok := codes[code]; ok {
		return v
	}
	return http.StatusInternalServerError
}

// Pinger checks a dependency for /healthz.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Server is the HTTP server of varco-cloud. Set the services before Open.
type Server struct {
	ln     net.Listener
	server *http.Server
	router *chi.Mux

	// Addr is the address to listen on, e.g. ":8080" or "127.0.0.1:0".
	Addr   string
	Logger *slog.Logger
	Now    func() time.Time

	DB              Pinger
	AuthService     cloud.AuthService
	TenantService   cloud.TenantService
	OperatorService cloud.OperatorService
	SiteService     cloud.SiteService
	MemberService   cloud.MemberService
	ImportService   cloud.ImportService
	CRMService      cloud.CRMService
	ActionService   cloud.ActionService
	AccessService   cloud.AccessService
	AuditService    cloud.AuditService
	// TemplateService and CommunicationService serve the messaging.
	TemplateService      cloud.TemplateService
	CommunicationService cloud.CommunicationService
	TargetService        cloud.TargetService
	ScheduleService      cloud.ScheduleService
	// SyncConfigService serves /sync: the edges' offline policy and the
	// signing keys.
	SyncConfigService cloud.SyncConfigService
	EdgeService       cloud.EdgeService
	CommandService    cloud.CommandService
	PassageService    cloud.PassageService

	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewServer returns a server with its routes registered.
func NewServer() *Server {
	s := &Server{router: chi.NewRouter(), Logger: slog.Default(), Now: time.Now, registry: prometheus.NewRegistry()}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "varco_http_requests_total", Help: "HTTP requests by route and status."},
		[]string{"method", "route", "code"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "varco_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: prometheus.DefBuckets}, []string{"method", "route"})
	s.registry.MustRegister(s.requests, s.duration, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.server = &http.Server{Handler: s.router, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second, WriteTimeout: 120 * time.Second, IdleTimeout: 120 * time.Second}
	s.routes()
	return s
}

// MustRegister adds collectors to the server's /metrics: the other parts
// of the process (the MQTT ingester) report there too.
func (s *Server) MustRegister(cs ...prometheus.Collector) { s.registry.MustRegister(cs...) }

// Router returns the root router, for tests that walk the routes.
func (s *Server) Router() chi.Router { return s.router }

// ServeHTTP serves a request without a listener.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Open starts listening on Addr and serving in the background.
func (s *Server) Open() (err error) {
	if s.ln, err = net.Listen("tcp", s.Addr); err != nil {
		return fmt.Errorf("listen %s: %w", s.Addr, err)
	}
	s.server.ErrorLog = slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn)
	go func() {
		if err := s.server.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("http serve", slog.Any("err", err))
		}
	}()
	return nil
}

// URL returns the base URL the server listens on.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	addr := s.ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "localhost"
	}
	return fmt.Sprintf("http://%s", net.JoinHostPort(host, strconv.Itoa(addr.Port)))
}

// Close shuts the server down gracefully within ctx.
func (s *Server) Close(ctx context.Context) error {
	if err := s.server.Shutdown(ctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe is the outermost middleware: access log, metrics, panic recovery.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Logger.ErrorContext(r.Context(), "panic", slog.Any("panic", v), slog.String("path", r.URL.Path))
				if sw.status == 0 {
					s.fail(sw, r, fmt.Errorf("panic: %v", v))
				}
			}
			route := "unmatched"
			if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
				route = rc.RoutePattern()
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			elapsed := s.Now().Sub(start)
			s.requests.WithLabelValues(r.Method, route, strconv.Itoa(sw.status)).Inc()
			s.duration.WithLabelValues(r.Method, route).Observe(elapsed.Seconds())
			attrs := []slog.Attr{slog.String("method", r.Method), slog.String("route", route), slog.String("path", r.URL.Path),
				slog.Int("status", sw.status), slog.Int("bytes", sw.bytes), slog.Duration("duration", elapsed), slog.String("remote", r.RemoteAddr)}
			if op := cloud.OperatorFromContext(r.Context()); op != nil {
				attrs = append(attrs, slog.Int64("tenant_id", op.TenantID), slog.Int64("operator_id", op.ID))
			}
			s.Logger.LogAttrs(r.Context(), slog.LevelInfo, "http request", attrs...)
		}()
		next.ServeHTTP(sw, r)
	})
}

// authenticate requires a bearer token and puts its operator in the context.
// The operator is stored in a holder created by the outer middleware so the
// access log can see it.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="varco"`)
			s.fail(w, r, cloud.Errorf(cloud.EUNAUTHORIZED, "A bearer token is required."))
			return
		}
		op, err := s.AuthService.Authenticate(r.Context(), token)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="varco", error="invalid_token"`)
			s.fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(cloud.NewContextWithOperator(r.Context(), op)))
	})
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// fail writes err as JSON with its status and logs internal errors.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := cloud.ErrorCode(err), cloud.ErrorMessage(err)
	if code == cloud.EINTERNAL {
		s.Logger.ErrorContext(r.Context(), "internal error", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	}
	writeJSON(w, ErrorStatusCode(code), errorBody{Error: errorDetail{Code: code, Message: msg, Field: cloud.ErrorField(err)}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// writeVersioned writes v with an ETag carrying its version.
func writeVersioned(w http.ResponseWriter, status, version int, v any) {
	w.Header().Set("ETag", fmt.Sprintf(`"%d"`, version))
	writeJSON(w, status, v)
}

// decode reads a JSON body into v: one object, no unknown fields, at most
// MaxBodyBytes. Errors are EINVALID (naming the field when known) or ETOOLARGE.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return cloud.Invalid("Content-Type", "The body must be application/json.")
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonError(err)
		}
		return cloud.Invalid("", "The body must hold a single JSON value.")
	}
	return nil
}

func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return cloud.Errorf(cloud.ETOOLARGE, "The body is larger than %d bytes.", mbe.Limit)
	case errors.Is(err, io.EOF):
		return cloud.Invalid("", "A JSON body is required.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return cloud.Invalid("", "The JSON body is truncated.")
	case errors.As(err, &syn):
		return cloud.Invalid("", "Malformed JSON at byte %d.", syn.Offset)
	case errors.As(err, &typ):
		field := jsonField(typ.Field)
		if field == "" {
			return cloud.Invalid("", "The body must be a JSON %s.", "object")
		}
		return cloud.Invalid(field, "Must be a JSON %s, not %s.", jsonKind(typ.Type.Kind().String()), typ.Value)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return cloud.Invalid(strings.Trim(f, `"`), "Unknown field.")
	}
	return cloud.Invalid("", "Invalid JSON: %v", err)
}

// jsonField turns the path of a decoding error into the JSON field's name.
// Since Go 1.24 the path names embedded structs too (the PATCH bodies embed
// the domain's update types: "MemberUpdate.first_name"); JSON names here
// are lower case, Go type names are not.
func jsonField(path string) string {
	var parts []string
	for p := range strings.SplitSeq(path, ".") {
		if p != "" && !unicode.IsUpper(rune(p[0])) {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ".")
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "number"
	case k == "slice" || k == "array":
		return "array"
	case k == "struct" || k == "map":
		return "object"
	case k == "bool":
		return "boolean"
	case k == "ptr":
		return "value"
	}
	return k
}

// pathID parses the {id} (or named) path parameter. Anything but a positive
// int64 is "not found": the entity cannot exist.
func pathID(r *http.Request, name string) (int64, error) {
	s := chi.URLParam(r, name)
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != s {
		return 0, cloud.Errorf(cloud.ENOTFOUND, "Not found.")
	}
	return id, nil
}

// queryInt64 parses an optional non-negative integer query parameter.
func queryInt64(r *http.Request, name string) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, cloud.Invalid(name, "Must be a non-negative integer.")
	}
	return v, nil
}

// queryLimit parses "limit" in [1, max], default def.
func queryLimit(r *http.Request, def, max int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > max {
		return 0, cloud.Invalid("limit", "Must be an integer from 1 to %d.", max)
	}
	return v, nil
}

func queryDate(r *http.Request, name string) (cloud.Date, error) {
	d, err := cloud.ParseDate(r.URL.Query().Get(name))
	if err != nil {
		return cloud.Date{}, cloud.Invalid(name, "Must be a date YYYY-MM-DD.")
	}
	return d, nil
}

// version returns the version the client edits: If-Match wins over the
// body's version field. Neither gives EPRECONDREQ.
func version(r *http.Request, body *int) (int, error) {
	if im := r.Header.Get("If-Match"); im != "" {
		v, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(im, "W/"), `"`))
		if err != nil || v < 1 {
			return 0, cloud.Invalid("If-Match", `If-Match must be a version ETag like "3".`)
		}
		return v, nil
	}
	if body != nil {
		return *body, nil
	}
	return 0, cloud.Errorf(cloud.EPRECONDREQ, "Send the version you edit, in If-Match or a version field.")
}

// page is a page of a list with the cursor of the next one.
type page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func newPage[T any](items []T, limit int, id func(T) int64) page[T] {
	p := page[T]{Items: items}
	if p.Items == nil {
		p.Items = []T{}
	}
	if len(items) == limit && limit > 0 {
		c := strconv.FormatInt(id(items[len(items)-1]), 10)
		p.NextCursor = &c
	}
	return p
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.DB.Ping(ctx); err != nil {
		s.Logger.WarnContext(ctx, "healthz: database", slog.Any("err", err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "database": "down"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "database": "ok"})
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	b, _ := openapiFS.ReadFile("openapi.json")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})
}
