package http

import (
	"net/http"

	"varco.dev/cloud"
)

// The edges' configuration from the cloud: offline policy and signing keys.

func (s *Server) handleGetOfflinePolicy(w http.ResponseWriter, r *http.Request) {
	p, err := s.SyncConfigService.OfflinePolicy(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeVersioned(w, http.StatusOK, p.Version, p)
}

func (s *Server) handlePutOfflinePolicy(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Limits  []cloud.OfflineLimit `json:"limits"`
		Version *int                 `json:"version"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := version(r, req.Version)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.SyncConfigService.PutOfflinePolicy(r.Context(), &cloud.OfflinePolicy{Limits: req.Limits}, v)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeVersioned(w, http.StatusOK, p.Version, p)
}

// handleListSigningKeys answers with a bare array, as installers' scripts
// read it: [{"key_id", "public_key", "config_line", ...}].
func (s *Server) handleListSigningKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.SyncConfigService.SigningKeys(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, keys)
}

func (s *Server) handleAddSigningKey(w http.ResponseWriter, r *http.Request) {
	k, err := s.SyncConfigService.AddSigningKey(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, k)
}

// keyGeneration reads the path's signing key generation: one that is not a
// number, or too large to be one, names no key.
func keyGeneration(r *http.Request) (int, error) {
	gen, err := pathID(r, "generation")
	if err != nil || gen > 1<<30 {
		return 0, cloud.NotFound("Signing key")
	}
	return int(gen), nil
}

func (s *Server) handleActivateSigningKey(w http.ResponseWriter, r *http.Request) {
	gen, err := keyGeneration(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	k, err := s.SyncConfigService.ActivateSigningKey(r.Context(), gen)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

func (s *Server) handleRetireSigningKey(w http.ResponseWriter, r *http.Request) {
	gen, err := keyGeneration(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.SyncConfigService.RetireSigningKey(r.Context(), gen); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
