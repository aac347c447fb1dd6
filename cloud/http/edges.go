package http

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"varco.dev/cloud"
)

// Edges.

func (s *Server) handleListEdges(w http.ResponseWriter, r *http.Request) {
	serveList(s, w, r, s.EdgeService.FindEdges)
}

// handleCreateEdge creates an edge and answers with its MQTT password: the
// only time the cloud shows it.
func (s *Server) handleCreateEdge(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SiteID int64  `json:"site_id"`
		Code   string `json:"code"`
		Name   string `json:"name"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	sec, err := s.EdgeService.CreateEdge(r.Context(), &cloud.Edge{SiteID: req.SiteID, Code: req.Code, Name: req.Name})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/edges/%d", sec.Edge.ID))
	w.Header().Set("Cache-Control", "no-store")
	writeVersioned(w, http.StatusCreated, sec.Edge.Version, sec)
}

func (s *Server) handleGetEdge(w http.ResponseWriter, r *http.Request) {
	serveGet(s, w, r, s.EdgeService.FindEdgeByID)
}

func (s *Server) handleUpdateEdge(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.EdgeUpdate
		Version *int `json:"version"`
	}
	serveUpdate(s, w, r, &req, &req.Version, func(ctx context.Context, id int64, v int) (*cloud.Edge, error) {
		return s.EdgeService.UpdateEdge(ctx, id, v, req.EdgeUpdate)
	})
}

// handleDeleteEdge retires an edge; the version read goes in If-Match.
func (s *Server) handleDeleteEdge(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := version(r, nil)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.EdgeService.DeleteEdge(r.Context(), id, v); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleRotateEdgePassword(w http.ResponseWriter, r *http.Request) {
	serveByID(s, w, r, s.EdgeService.RotateEdgePassword, func(sec *cloud.EdgeSecret) {
		w.Header().Set("Cache-Control", "no-store")
		writeVersioned(w, http.StatusOK, sec.Edge.Version, sec)
	})
}

// handleEdgeConfig answers what the edge's edge.toml needs, the tenant's
// credential key included: admins only, never cached.
func (s *Server) handleEdgeConfig(w http.ResponseWriter, r *http.Request) {
	serveByID(s, w, r, s.EdgeService.EdgeConfig, func(c *cloud.EdgeConfig) {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, c)
	})
}

// handleSendCommand sends a command: 201 when the broker took it, 202 when
// it is queued (the broker was unreachable; it goes out on the edge's next
// connect unless it expires first).
func (s *Server) handleSendCommand(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req cloud.CommandRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	cmd, err := s.CommandService.SendCommand(r.Context(), id, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusCreated
	if cmd.Status == cloud.CommandQueued {
		status = http.StatusAccepted
	}
	writeJSON(w, status, cmd)
}

func (s *Server) handleListCommands(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	serveCursorPage(s, w, r, func(ctx context.Context, cursor int64, limit int) ([]*cloud.EdgeCommand, error) {
		return s.CommandService.FindCommands(ctx, id, cursor, limit)
	}, func(c *cloud.EdgeCommand) int64 { return c.ID })
}

// Passages.

// passageFilter reads the query of a passage list.
func passageFilter(r *http.Request) (cloud.PassageFilter, error) {
	vals := r.URL.Query()
	q := query{r: r}
	f := cloud.PassageFilter{Reader: vals.Get("reader"), Decision: vals.Get("decision"), Cursor: vals.Get("cursor")}
	f.Limit = q.limit(50, 1000)
	f.MemberID = q.int64("member_id")
	f.EdgeID = q.int64("edge_id")
	f.From = q.time("from")
	f.To = q.time("to")
	return f, q.err
}

// time reads an optional instant, RFC 3339 or a date YYYY-MM-DD (its
// midnight UTC).
func (q *query) time(name string) time.Time {
	s := q.r.URL.Query().Get(name)
	if q.err != nil || s == "" {
		return time.Time{}
	}
	t, err := parseTime(s)
	if err != nil {
		q.err = cloud.Invalid(name, "Must be a time (RFC 3339) or a date YYYY-MM-DD.")
	}
	return t
}

func (s *Server) servePassages(w http.ResponseWriter, r *http.Request, f cloud.PassageFilter) {
	items, next, err := s.PassageService.FindPassages(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := page[*cloud.Passage]{Items: items}
	if p.Items == nil {
		p.Items = []*cloud.Passage{}
	}
	if next != "" {
		p.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) handleListPassages(w http.ResponseWriter, r *http.Request) {
	f, err := passageFilter(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.servePassages(w, r, f)
}

// handleMemberPassages lists one member's passages; the member must be the
// tenant's.
func (s *Server) handleMemberPassages(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f, err := passageFilter(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.MemberService.FindMemberByID(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	f.MemberID = id
	s.servePassages(w, r, f)
}
