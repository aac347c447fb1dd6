package http

import (
	"context"
	"net/http"
	"time"

	"varco.dev/cloud"
)

// actionInput is what a client sends to create an action.
type actionInput struct {
	MemberID    int64            `json:"member_id"`
	TypeID      int64            `json:"type_id"`
	OutcomeID   int64            `json:"outcome_id"`
	Kind        cloud.ActionKind `json:"kind"`
	Description string           `json:"description"`
	Tags        []string         `json:"tags"`
	PlannedAt   *time.Time       `json:"planned_at"`
	CompleteBy  cloud.Date       `json:"complete_by"`
	Purpose     cloud.Purpose    `json:"purpose"`
	Private     bool             `json:"private"`
	OperatorID  *int64           `json:"operator_id"`
}

func (in *actionInput) action() *cloud.Action {
	return &cloud.Action{MemberID: in.MemberID, TypeID: in.TypeID, OutcomeID: in.OutcomeID, Kind: in.Kind, Description: in.Description,
		Tags: in.Tags, PlannedAt: in.PlannedAt, CompleteBy: in.CompleteBy, Purpose: in.Purpose, Private: in.Private, OperatorID: in.OperatorID}
}

func (s *Server) handleListActions(w http.ResponseWriter, r *http.Request) {
	serveCursorPage(s, w, r, func(ctx context.Context, cursor int64, limit int) ([]*cloud.Action, error) {
		q := query{r: r}
		f := cloud.ActionFilter{Cursor: cursor, Limit: limit,
			OperatorID: q.int64("operator_id"), MemberID: q.int64("member_id"), Open: q.optionalBool("open")}
		if q.err != nil {
			return nil, q.err
		}
		return s.ActionService.FindActions(ctx, f)
	}, actionID)
}

// actionID is the cursor of action pages.
func actionID(a *cloud.Action) int64 { return a.ID }

func (s *Server) handleMemberActions(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.MemberService.FindMemberByID(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	serveCursorPage(s, w, r, func(ctx context.Context, cursor int64, limit int) ([]*cloud.Action, error) {
		return s.ActionService.FindActions(ctx, cloud.ActionFilter{MemberID: id, Cursor: cursor, Limit: limit})
	}, actionID)
}

func (s *Server) handleCreateAction(w http.ResponseWriter, r *http.Request) {
	var in actionInput
	serveCreate(s, w, r, &in, func(ctx context.Context) (*cloud.Action, error) {
		a := in.action()
		return a, s.ActionService.CreateAction(ctx, a)
	}, nil)
}

func (s *Server) handleBulkActions(w http.ResponseWriter, r *http.Request) {
	var req struct {
		MemberIDs []int64     `json:"member_ids"`
		Action    actionInput `json:"action"`
	}
	serveDecoded(s, w, r, &req, http.StatusCreated, func(ctx context.Context) (page[*cloud.Action], error) {
		acts, err := s.ActionService.BulkCreateActions(ctx, req.Action.action(), req.MemberIDs)
		return page[*cloud.Action]{Items: acts}, err
	})
}

func (s *Server) handleGetAction(w http.ResponseWriter, r *http.Request) {
	serveGet(s, w, r, s.ActionService.FindActionByID)
}

func (s *Server) handleUpdateAction(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.ActionUpdate
		Version *int `json:"version"`
	}
	serveUpdate(s, w, r, &req, &req.Version, func(ctx context.Context, id int64, v int) (*cloud.Action, error) {
		return s.ActionService.UpdateAction(ctx, id, v, req.ActionUpdate)
	})
}

func (s *Server) handleAdvanceAction(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.AdvanceRequest
		Version *int `json:"version"`
	}
	id, v, err := s.editRequest(w, r, &req, &req.Version)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req.AdvanceRequest.Version = v
	res, err := s.ActionService.AdvanceAction(r.Context(), id, req.AdvanceRequest)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeVersioned(w, http.StatusOK, res.Action.Version, res)
}

func (s *Server) handleCopyAction(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req struct {
		MemberID  int64      `json:"member_id"`
		PlannedAt *time.Time `json:"planned_at"`
	}
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	a, err := s.ActionService.CopyAction(r.Context(), id, req.MemberID, req.PlannedAt)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeVersioned(w, http.StatusCreated, a.Version, a)
}

func (s *Server) handleAgenda(w http.ResponseWriter, r *http.Request) {
	var f cloud.AgendaFilter
	q := query{r: r}
	f.OperatorID = q.int64("operator_id")
	f.From = q.date("from")
	f.To = q.date("to")
	if q.err != nil {
		s.fail(w, r, q.err)
		return
	}
	if f.From.IsZero() {
		f.From = cloud.DateOf(s.Now().UTC())
	}
	if f.To.IsZero() {
		f.To = f.From.AddDays(6)
	}
	days, err := s.ActionService.Agenda(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page[*cloud.AgendaDay]{Items: days})
}

func (s *Server) handleLeaderboard(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	to := s.Now().UTC()
	from := to.AddDate(0, -1, 0)
	var err error
	if v := q.Get("from"); v != "" {
		if from, err = parseTime(v); err != nil {
			s.fail(w, r, cloud.Invalid("from", "Must be a date or an RFC 3339 time."))
			return
		}
	}
	if v := q.Get("to"); v != "" {
		if to, err = parseTime(v); err != nil {
			s.fail(w, r, cloud.Invalid("to", "Must be a date or an RFC 3339 time."))
			return
		}
	}
	entries, err := s.ActionService.Leaderboard(r.Context(), from, to)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page[*cloud.LeaderboardEntry]{Items: entries})
}

func (s *Server) handleWhatIf(w http.ResponseWriter, r *http.Request) {
	var req cloud.WhatIfRequest
	serveDecoded(s, w, r, &req, http.StatusOK, func(ctx context.Context) (*cloud.WhatIfResult, error) {
		return s.ActionService.WhatIf(ctx, req)
	})
}
