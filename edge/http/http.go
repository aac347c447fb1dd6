// Package http serves varco-edge's local endpoints: /healthz for the
// installer and the service manager, /metrics for Prometheus.
//
// It listens on the controller's loopback by default (config http_addr): the
// figures say who passed and which readers are down, so they are not for the
// club's network at large.
package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health is what /healthz reports. OK is false, and the status 503, when
// something needs an installer: a reader offline or the journal failing.
type Health struct {
	OK             bool           `json:"ok"`
	Version        string         `json:"version"`
	CacheVersion   uint64         `json:"cache_version"`
	JournalBacklog uint64         `json:"journal_backlog"`
	Readers        []ReaderHealth `json:"readers"`
	Problems       []string       `json:"problems,omitempty"`
}

// ReaderHealth is one reader's line in Health.
type ReaderHealth struct {
	ID     string `json:"id"`
	Online bool   `json:"online"`
	Rows   int    `json:"rows,omitempty"`
	Cols   int    `json:"cols,omitempty"`
}

// Server is the local HTTP server.
type Server struct {
	Health func(context.Context) Health
	srv    *http.Server
	ln     net.Listener
	done   chan error
}

// Listen binds addr (":0" picks a port) and starts serving in the
// background; Close stops it.
func Listen(addr string, reg *prometheus.Registry, health func(context.Context) Health, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen http %s: %w", addr, err)
	}
	s := &Server{Health: health, ln: ln, done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close shuts the server down, waiting for requests in flight until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serveErr := <-s.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	h := s.Health(r.Context())
	w.Header().Set("Content-Type", "application/json")
	if !h.OK {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(h)
}
