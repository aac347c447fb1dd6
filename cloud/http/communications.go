package http

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"varco.dev/cloud"
)

// Templates.

// templateInput is what a client sends to create a template.
type templateInput struct {
	Name     string        `json:"name"`
	Channel  cloud.Channel `json:"channel"`
	Subject  string        `json:"subject"`
	Text     string        `json:"text"`
	HTML     string        `json:"html"`
	Title    string        `json:"title"`
	Subtitle string        `json:"subtitle"`
	ImageURL string        `json:"image_url"`
	Link     string        `json:"link"`
	SMSText  string        `json:"sms_text"`
}

func (s *Server) handleListTemplates(w http.ResponseWriter, r *http.Request) {
	ch := cloud.Channel(r.URL.Query().Get("channel"))
	switch ch {
	case "", cloud.ChannelEmail, cloud.ChannelSMS, cloud.ChannelPush:
	default:
		s.fail(w, r, cloud.Invalid("channel", "Must be email, sms or push."))
		return
	}
	serveList(s, w, r, func(ctx context.Context) ([]*cloud.Template, error) { return s.TemplateService.FindTemplates(ctx, ch) })
}

func (s *Server) handleCreateTemplate(w http.ResponseWriter, r *http.Request) {
	var in templateInput
	serveCreate(s, w, r, &in, func(ctx context.Context) (*cloud.Template, error) {
		t := &cloud.Template{Name: in.Name, Channel: in.Channel, Subject: in.Subject, Text: in.Text, HTML: in.HTML, Title: in.Title,
			Subtitle: in.Subtitle, ImageURL: in.ImageURL, Link: in.Link, SMSText: in.SMSText}
		return t, s.TemplateService.CreateTemplate(ctx, t)
	}, func(t *cloud.Template) string { return fmt.Sprintf("/api/v1/templates/%d", t.ID) })
}

func (s *Server) handleGetTemplate(w http.ResponseWriter, r *http.Request) {
	serveGet(s, w, r, s.TemplateService.FindTemplateByID)
}

func (s *Server) handleUpdateTemplate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.TemplateUpdate
		Version *int `json:"version"`
	}
	serveUpdate(s, w, r, &req, &req.Version, func(ctx context.Context, id int64, v int) (*cloud.Template, error) {
		return s.TemplateService.UpdateTemplate(ctx, id, v, req.TemplateUpdate)
	})
}

// handleArchiveTemplate archives a template; the version comes in If-Match
// or a {"version"} body.
func (s *Server) handleArchiveTemplate(w http.ResponseWriter, r *http.Request) {
	serveArchive(s, w, r, s.TemplateService.ArchiveTemplate)
}

func (s *Server) handlePlaceholders(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, page[cloud.PlaceholderInfo]{Items: cloud.Placeholders})
}

// Communications.

// handlePreviewCommunication renders a send for the first members (query
// "first", default 5, at most 50) and counts channels and skips.
func (s *Server) handlePreviewCommunication(w http.ResponseWriter, r *http.Request) {
	first := 5
	if v := r.URL.Query().Get("first"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 50 {
			s.fail(w, r, cloud.Invalid("first", "Must be an integer from 0 to 50."))
			return
		}
		first = n
	}
	var req cloud.SendRequest
	serveDecoded(s, w, r, &req, http.StatusOK, func(ctx context.Context) (*cloud.Preview, error) {
		return s.CommunicationService.PreviewCommunication(ctx, req, first)
	})
}

// handleCreateCommunication queues a send: 202 with the job, whose progress
// Location gives.
func (s *Server) handleCreateCommunication(w http.ResponseWriter, r *http.Request) {
	var req cloud.SendRequest
	s.serveNewCommunication(w, r, &req, http.StatusAccepted, func(ctx context.Context) (*cloud.Communication, error) {
		return s.CommunicationService.CreateCommunication(ctx, req)
	})
}

func (s *Server) handleCreateCRMCommunication(w http.ResponseWriter, r *http.Request) {
	var req cloud.CRMRequest
	s.serveNewCommunication(w, r, &req, http.StatusCreated, func(ctx context.Context) (*cloud.Communication, error) {
		return s.CommunicationService.CreateCRMCommunication(ctx, req)
	})
}

// serveNewCommunication serves a request that starts a communication: req
// is the body, create starts the communication once req is decoded. It is
// written with status (202 for a queued send, 201 for a CRM communication,
// whose actions exist at once) and a Location to follow it.
func (s *Server) serveNewCommunication(w http.ResponseWriter, r *http.Request, req any, status int,
	create func(context.Context) (*cloud.Communication, error)) {
	if err := decode(w, r, req); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := create(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/communications/%d", c.ID))
	writeJSON(w, status, c)
}

func (s *Server) handleListCommunications(w http.ResponseWriter, r *http.Request) {
	serveCursorPage(s, w, r, s.CommunicationService.FindCommunications, func(c *cloud.Communication) int64 { return c.ID })
}

func (s *Server) handleGetCommunication(w http.ResponseWriter, r *http.Request) {
	serveFound(s, w, r, s.CommunicationService.FindCommunicationByID)
}

// serveMessages serves a page of messages; owner checks the path's entity
// (communication or member) is the tenant's and sets the filter.
func (s *Server) serveMessages(w http.ResponseWriter, r *http.Request, owner func(ctx context.Context, id int64, f *cloud.MessageFilter) error) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	serveCursorPage(s, w, r, func(ctx context.Context, cursor int64, limit int) ([]*cloud.Message, error) {
		f := cloud.MessageFilter{Cursor: cursor, Limit: limit}
		if err := owner(ctx, id, &f); err != nil {
			return nil, err
		}
		return s.CommunicationService.FindMessages(ctx, f)
	}, func(m *cloud.Message) int64 { return m.ID })
}

func (s *Server) handleCommunicationMessages(w http.ResponseWriter, r *http.Request) {
	s.serveMessages(w, r, func(ctx context.Context, id int64, f *cloud.MessageFilter) error {
		f.CommunicationID = id
		_, err := s.CommunicationService.FindCommunicationByID(ctx, id)
		return err
	})
}

// handleMemberMessages is a member's send history: every message and skip.
func (s *Server) handleMemberMessages(w http.ResponseWriter, r *http.Request) {
	s.serveMessages(w, r, func(ctx context.Context, id int64, f *cloud.MessageFilter) error {
		f.MemberID = id
		_, err := s.MemberService.FindMemberByID(ctx, id)
		return err
	})
}

func (s *Server) handleRegisterPushToken(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req struct {
		Token    string `json:"token"`
		Platform string `json:"platform"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.CommunicationService.RegisterPushToken(r.Context(), id, req.Token, req.Platform); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleUnsubscribe is the one-click unsubscribe of RFC 8058: the mail
// client POSTs "List-Unsubscribe=One-Click" to the List-Unsubscribe URL,
// without credentials; the token in the URL is the credential.
func (s *Server) handleUnsubscribe(w http.ResponseWriter, r *http.Request) {
	token := chi.URLParam(r, "token")
	if len(token) != 32 {
		s.fail(w, r, cloud.NotFound("Unsubscribe link"))
		return
	}
	if err := s.CommunicationService.Unsubscribe(r.Context(), token); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "unsubscribed"})
}
