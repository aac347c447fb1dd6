package gatewaytest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"varco.dev/cloud/fcm"
)

// FCM is an HTTP server with FCM's HTTP v1 messages:send for one project.
type FCM struct {
	*httptest.Server
	ProjectID, AccessToken string
	faults

	mu           sync.Mutex
	delivered    []fcm.Message
	byID         map[string]string // data.message_id → name
	unregistered map[string]bool
	requests     []string // data.message_id of every request
}

// NewFCM starts an FCM gateway on loopback, closed in t.Cleanup.
func NewFCM(t testing.TB) *FCM {
	g := &FCM{ProjectID: "varco-test", AccessToken: "ya29.test-token", byID: map[string]string{}, unregistered: map[string]bool{}}
	g.Server = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.Close)
	return g
}

// Unregister makes the gateway answer 404 UNREGISTERED for token.
func (g *FCM) Unregister(token string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.unregistered[token] = true
}

func fcmError(w http.ResponseWriter, status int, grpcStatus, errorCode, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	e := map[string]any{"code": status, "message": msg, "status": grpcStatus}
	if errorCode != "" {
		e["details"] = []map[string]string{{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": errorCode}}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"error": e})
}

func (g *FCM) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/projects/"+g.ProjectID+"/messages:send" {
		fcmError(w, http.StatusNotFound, "NOT_FOUND", "", "Requested entity was not found.")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+g.AccessToken {
		fcmError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", "Request had invalid authentication credentials.")
		return
	}
	var req fcm.Request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fcmError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload received. "+err.Error())
		return
	}
	id := req.Message.Data["message_id"]
	g.mu.Lock()
	g.requests = append(g.requests, id)
	unregistered := g.unregistered[req.Message.Token]
	g.mu.Unlock()
	f, _ := g.next()
	switch {
	case f.Status != 0:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		st, code := "INTERNAL", "INTERNAL"
		switch f.Status {
		case http.StatusTooManyRequests:
			st, code = "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"
		case http.StatusServiceUnavailable:
			st, code = "UNAVAILABLE", "UNAVAILABLE"
		}
		fcmError(w, f.Status, st, code, http.StatusText(f.Status))
		return
	case req.Message.Token == "":
		fcmError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token")
		return
	case unregistered:
		fcmError(w, http.StatusNotFound, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
		return
	case req.Message.Notification == nil || req.Message.Notification.Title == "":
		fcmError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "notification.title is required by this test gateway")
		return
	}
	g.mu.Lock()
	name, seen := g.byID[id]
	if !seen || id == "" {
		name = fmt.Sprintf("projects/%s/messages/0:%d", g.ProjectID, len(g.delivered)+1)
		g.delivered = append(g.delivered, req.Message)
		if id != "" {
			g.byID[id] = name
		}
	}
	g.mu.Unlock()
	if f.Hang {
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(map[string]string{"name": name})
}

// Delivered returns the notifications delivered so far, each once.
func (g *FCM) Delivered() []fcm.Message {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]fcm.Message(nil), g.delivered...)
}

// Requests returns data.message_id of every request received.
func (g *FCM) Requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.requests...)
}
