package http

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"varco.dev/cloud"
)

// targetInput is what a client sends to create a target.
type targetInput struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Criteria    []cloud.Criterion `json:"criteria"`
	DateMode    cloud.DateMode    `json:"date_mode"`
	Schedulable bool              `json:"schedulable"`
	InMenu      bool              `json:"in_menu"`
}

func (s *Server) handleListTargets(w http.ResponseWriter, r *http.Request) {
	serveCursorPage(s, w, r, func(ctx context.Context, cursor int64, limit int) ([]*cloud.Target, error) {
		q := query{r: r}
		f := cloud.TargetFilter{Cursor: cursor, Limit: limit,
			InMenu: q.bool("menu"), Schedulable: q.bool("schedulable"), IncludeArchived: q.bool("archived")}
		if q.err != nil {
			return nil, q.err
		}
		return s.TargetService.FindTargets(ctx, f)
	}, func(t *cloud.Target) int64 { return t.ID })
}

func (s *Server) handleCreateTarget(w http.ResponseWriter, r *http.Request) {
	var in targetInput
	serveCreate(s, w, r, &in, func(ctx context.Context) (*cloud.Target, error) {
		t := &cloud.Target{Name: in.Name, Description: in.Description, Schedulable: in.Schedulable, InMenu: in.InMenu,
			TargetDefinition: cloud.TargetDefinition{Criteria: in.Criteria, DateMode: in.DateMode}}
		return t, s.TargetService.CreateTarget(ctx, t)
	}, func(t *cloud.Target) string { return fmt.Sprintf("/api/v1/targets/%d", t.ID) })
}

func (s *Server) handleGetTarget(w http.ResponseWriter, r *http.Request) {
	serveGet(s, w, r, s.TargetService.FindTargetByID)
}

func (s *Server) handleUpdateTarget(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.TargetUpdate
		Version *int `json:"version"`
	}
	serveUpdate(s, w, r, &req, &req.Version, func(ctx context.Context, id int64, v int) (*cloud.Target, error) {
		return s.TargetService.UpdateTarget(ctx, id, v, req.TargetUpdate)
	})
}

func (s *Server) handleArchiveTarget(w http.ResponseWriter, r *http.Request) {
	serveArchive(s, w, r, s.TargetService.ArchiveTarget)
}

// targetQuery reads page, limit and day.
func targetQuery(r *http.Request) (cloud.TargetQuery, error) {
	var tq cloud.TargetQuery
	q := query{r: r}
	tq.Limit = q.limit(50, 1000)
	tq.Day = q.date("day")
	if q.err != nil {
		return tq, q.err
	}
	if p := r.URL.Query().Get("page"); p != "" {
		v, err := strconv.Atoi(p)
		if err != nil || v < 1 {
			return tq, cloud.Invalid("page", "Must be a page number from 1.")
		}
		tq.Page = v
	}
	return tq, nil
}

func (s *Server) handleRunTarget(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	tq, err := targetQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.TargetService.RunTarget(r.Context(), id, tq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) handlePreviewTarget(w http.ResponseWriter, r *http.Request) {
	tq, err := targetQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var def struct {
		Criteria []cloud.Criterion `json:"criteria"`
		DateMode cloud.DateMode    `json:"date_mode"`
	}
	if err := decode(w, r, &def); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.TargetService.PreviewTarget(r.Context(), cloud.TargetDefinition{Criteria: def.Criteria, DateMode: def.DateMode}, tq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// targetDay reads the target's id and the optional "day" its members are
// of.
func targetDay(r *http.Request) (int64, cloud.Date, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, cloud.Date{}, err
	}
	day, err := queryDate(r, "day")
	return id, day, err
}

func (s *Server) handleCountTarget(w http.ResponseWriter, r *http.Request) {
	id, day, err := targetDay(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	n, err := s.TargetService.CountTarget(r.Context(), id, day)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"count": n})
}

// exportTarget serves the target's members in the member CSV format.
func (s *Server) exportTarget(w http.ResponseWriter, r *http.Request, format string) {
	id, day, err := targetDay(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.exportMembers(w, r, format, fmt.Sprintf("target-%d", id), func(yield func(*cloud.Member) error) error {
		return s.TargetService.EachTargetMember(r.Context(), id, day, yield)
	})
}

func (s *Server) handleExportTargetCSV(w http.ResponseWriter, r *http.Request) {
	s.exportTarget(w, r, "csv")
}
func (s *Server) handleExportTargetXLSX(w http.ResponseWriter, r *http.Request) {
	s.exportTarget(w, r, "xlsx")
}

func (s *Server) handleTargetActions(w http.ResponseWriter, r *http.Request) {
	id, day, err := targetDay(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var in actionInput
	if err := decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if in.MemberID != 0 {
		s.fail(w, r, cloud.Invalid("member_id", "The target gives the members: leave member_id out."))
		return
	}
	res, err := s.TargetService.CreateTargetActions(r.Context(), id, day, in.action())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}
