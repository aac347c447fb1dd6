package http

import (
	"context"
	"net/http"
	"time"

	"varco.dev/cloud"
)

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	serveDecoded(s, w, r, &req, http.StatusOK, func(ctx context.Context) (map[string]any, error) {
		token, op, err := s.AuthService.Login(ctx, req.Email, req.Password)
		return map[string]any{"token": token, "operator": op}, err
	})
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	token := r.Header.Get("Authorization")[len("Bearer "):]
	if err := s.AuthService.Logout(r.Context(), token); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	t, err := s.TenantService.FindTenant(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"operator": cloud.OperatorFromContext(r.Context()), "tenant": t})
}

func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	serveDecoded(s, w, r, &req, http.StatusCreated, func(ctx context.Context) (map[string]any, error) {
		token, t, err := s.AuthService.CreateAPIToken(ctx, req.Name)
		return map[string]any{"token": token, "info": t}, err
	})
}

// Operators.

func (s *Server) handleListOperators(w http.ResponseWriter, r *http.Request) {
	serveList(s, w, r, s.OperatorService.FindOperators)
}

func (s *Server) handleCreateOperator(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email    string     `json:"email"`
		Name     string     `json:"name"`
		Role     cloud.Role `json:"role"`
		Password string     `json:"password"`
	}
	serveCreate(s, w, r, &req, func(ctx context.Context) (*cloud.Operator, error) {
		op := &cloud.Operator{Email: req.Email, Name: req.Name, Role: req.Role}
		return op, s.OperatorService.CreateOperator(ctx, op, req.Password)
	}, nil)
}

func (s *Server) handleGetOperator(w http.ResponseWriter, r *http.Request) {
	serveGet(s, w, r, s.OperatorService.FindOperatorByID)
}

func (s *Server) handleUpdateOperator(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.OperatorUpdate
		Version *int `json:"version"`
	}
	serveUpdate(s, w, r, &req, &req.Version, func(ctx context.Context, id int64, v int) (*cloud.Operator, error) {
		return s.OperatorService.UpdateOperator(ctx, id, v, req.OperatorUpdate)
	})
}

// editRequest parses the id, the body and the version of a PATCH.
func (s *Server) editRequest(w http.ResponseWriter, r *http.Request, body any, bodyVersion **int) (int64, int, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, 0, err
	}
	if err := decode(w, r, body); err != nil {
		return 0, 0, err
	}
	v, err := version(r, *bodyVersion)
	return id, v, err
}

// Sites and gates.

func (s *Server) handleListSites(w http.ResponseWriter, r *http.Request) {
	serveList(s, w, r, s.SiteService.FindSites)
}

func (s *Server) handleCreateSite(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name     string `json:"name"`
		Timezone string `json:"timezone"`
	}
	serveCreate(s, w, r, &req, func(ctx context.Context) (*cloud.Site, error) {
		site := &cloud.Site{Name: req.Name, Timezone: req.Timezone}
		return site, s.SiteService.CreateSite(ctx, site)
	}, nil)
}

func (s *Server) handleGetSite(w http.ResponseWriter, r *http.Request) {
	serveGet(s, w, r, s.SiteService.FindSiteByID)
}

func (s *Server) handleUpdateSite(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.SiteUpdate
		Version *int `json:"version"`
	}
	serveUpdate(s, w, r, &req, &req.Version, func(ctx context.Context, id int64, v int) (*cloud.Site, error) {
		return s.SiteService.UpdateSite(ctx, id, v, req.SiteUpdate)
	})
}

func (s *Server) handleListGates(w http.ResponseWriter, r *http.Request) {
	siteID, err := queryInt64(r, "site_id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	gates, err := s.SiteService.FindGates(r.Context(), siteID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page[*cloud.Gate]{Items: gates})
}

func (s *Server) handleCreateGate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SiteID     int64            `json:"site_id"`
		Name       string           `json:"name"`
		DeviceType cloud.DeviceType `json:"device_type"`
	}
	serveCreate(s, w, r, &req, func(ctx context.Context) (*cloud.Gate, error) {
		g := &cloud.Gate{SiteID: req.SiteID, Name: req.Name, DeviceType: req.DeviceType}
		return g, s.SiteService.CreateGate(ctx, g)
	}, nil)
}

func (s *Server) handleGetGate(w http.ResponseWriter, r *http.Request) {
	serveGet(s, w, r, s.SiteService.FindGateByID)
}

func (s *Server) handleUpdateGate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.GateUpdate
		Version *int `json:"version"`
	}
	serveUpdate(s, w, r, &req, &req.Version, func(ctx context.Context, id int64, v int) (*cloud.Gate, error) {
		return s.SiteService.UpdateGate(ctx, id, v, req.GateUpdate)
	})
}

// CRM configuration.

func (s *Server) handleCRMConfig(w http.ResponseWriter, r *http.Request) {
	cfg, err := s.CRMService.Config(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}

func (s *Server) handleCreateActionType(w http.ResponseWriter, r *http.Request) {
	var t cloud.ActionType
	serveCreate(s, w, r, &t, func(ctx context.Context) (*cloud.ActionType, error) {
		t.ID, t.Version = 0, 0
		return &t, s.CRMService.CreateActionType(ctx, &t)
	}, nil)
}

func (s *Server) handleUpdateActionType(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.ActionTypeUpdate
		Version *int `json:"version"`
	}
	serveUpdate(s, w, r, &req, &req.Version, func(ctx context.Context, id int64, v int) (*cloud.ActionType, error) {
		return s.CRMService.UpdateActionType(ctx, id, v, req.ActionTypeUpdate)
	})
}

func (s *Server) handleCreateOutcome(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name    string             `json:"name"`
		Group   cloud.OutcomeGroup `json:"group"`
		Default bool               `json:"default"`
	}
	serveCreate(s, w, r, &req, func(ctx context.Context) (*cloud.Outcome, error) {
		o := &cloud.Outcome{Name: req.Name, Group: req.Group, Default: req.Default, Active: true}
		return o, s.CRMService.CreateOutcome(ctx, o)
	}, nil)
}

func (s *Server) handleUpdateOutcome(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.OutcomeUpdate
		Version *int `json:"version"`
	}
	serveUpdate(s, w, r, &req, &req.Version, func(ctx context.Context, id int64, v int) (*cloud.Outcome, error) {
		return s.CRMService.UpdateOutcome(ctx, id, v, req.OutcomeUpdate)
	})
}

func (s *Server) handleCreateStatus(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	serveDecoded(s, w, r, &req, http.StatusCreated, func(ctx context.Context) (*cloud.CommercialStatus, error) {
		st := &cloud.CommercialStatus{Name: req.Name}
		return st, s.CRMService.CreateCommercialStatus(ctx, st)
	})
}

func (s *Server) handlePutRelation(w http.ResponseWriter, r *http.Request) {
	var rel cloud.Relation
	serveDecoded(s, w, r, &rel, http.StatusOK, func(ctx context.Context) (*cloud.Relation, error) {
		rel.ID = 0
		return &rel, s.CRMService.PutRelation(ctx, &rel)
	})
}

func (s *Server) handleReplace(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Kind string `json:"kind"`
		From int64  `json:"from"`
		To   int64  `json:"to"`
	}
	serveDecoded(s, w, r, &req, http.StatusOK, func(ctx context.Context) (map[string]int, error) {
		n, err := s.CRMService.Replace(ctx, req.Kind, req.From, req.To)
		return map[string]int{"actions": n}, err
	})
}

// Audit.

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	serveCursorPage(s, w, r, func(ctx context.Context, cursor int64, limit int) ([]*cloud.AuditEntry, error) {
		q := query{r: r}
		f := cloud.AuditFilter{Cursor: cursor, Limit: limit, EntityID: q.int64("entity_id"), Entity: r.URL.Query().Get("entity")}
		if q.err != nil {
			return nil, q.err
		}
		return s.AuditService.FindAudit(ctx, f)
	}, func(e *cloud.AuditEntry) int64 { return e.ID })
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := cloud.ParseDate(s)
	return d.Time(), err
}
