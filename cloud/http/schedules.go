package http

import (
	"context"
	"fmt"
	"net/http"

	"varco.dev/cloud"
)

// scheduleInput is what a client sends to create a scheduled operation.
type scheduleInput struct {
	Name       string             `json:"name"`
	Active     bool               `json:"active"`
	SenderID   int64              `json:"sender_id"`
	Recurrence cloud.Recurrence   `json:"recurrence"`
	SendTime   string             `json:"send_time"`
	Timezone   string             `json:"timezone"`
	StartsOn   cloud.Date         `json:"starts_on"`
	EndsOn     cloud.Date         `json:"ends_on"`
	TargetID   int64              `json:"target_id"`
	Body       cloud.ScheduleBody `json:"body"`
}

func (s *Server) handleListSchedules(w http.ResponseWriter, r *http.Request) {
	serveCursorPage(s, w, r, func(ctx context.Context, cursor int64, limit int) ([]*cloud.Schedule, error) {
		q := query{r: r}
		f := cloud.ScheduleFilter{Cursor: cursor, Limit: limit, Active: q.optionalBool("active")}
		if q.err != nil {
			return nil, q.err
		}
		return s.ScheduleService.FindSchedules(ctx, f)
	}, func(x *cloud.Schedule) int64 { return x.ID })
}

func (s *Server) handleCreateSchedule(w http.ResponseWriter, r *http.Request) {
	var in scheduleInput
	serveCreate(s, w, r, &in, func(ctx context.Context) (*cloud.Schedule, error) {
		sc := &cloud.Schedule{Name: in.Name, Active: in.Active, SenderID: in.SenderID, TargetID: in.TargetID, Body: in.Body,
			Timing: cloud.Timing{Recurrence: in.Recurrence, SendTime: in.SendTime, Timezone: in.Timezone, StartsOn: in.StartsOn, EndsOn: in.EndsOn}}
		return sc, s.ScheduleService.CreateSchedule(ctx, sc)
	}, func(sc *cloud.Schedule) string { return fmt.Sprintf("/api/v1/schedules/%d", sc.ID) })
}

func (s *Server) handleGetSchedule(w http.ResponseWriter, r *http.Request) {
	serveGet(s, w, r, s.ScheduleService.FindScheduleByID)
}

func (s *Server) handleUpdateSchedule(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.ScheduleUpdate
		Version *int `json:"version"`
	}
	serveUpdate(s, w, r, &req, &req.Version, func(ctx context.Context, id int64, v int) (*cloud.Schedule, error) {
		return s.ScheduleService.UpdateSchedule(ctx, id, v, req.ScheduleUpdate)
	})
}

// handleScheduleRuns lists an operation's runs, latest day first; the
// next page is before=<next_cursor>, a day.
func (s *Server) handleScheduleRuns(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := query{r: r}
	limit := q.limit(30, 366)
	before := q.date("before")
	if q.err != nil {
		s.fail(w, r, q.err)
		return
	}
	runs, err := s.ScheduleService.FindScheduleRuns(r.Context(), id, before, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := page[*cloud.ScheduleRun]{Items: runs}
	if p.Items == nil {
		p.Items = []*cloud.ScheduleRun{}
	}
	if len(runs) == limit {
		next := runs[len(runs)-1].Day.String()
		p.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, p)
}
