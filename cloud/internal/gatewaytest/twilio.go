package gatewaytest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// SMS is a message the Twilio gateway delivered.
type SMS struct {
	SID, To, From, Body, IdempotencyToken string
}

// Twilio is an HTTP server with Twilio's Messages API for one account.
type Twilio struct {
	*httptest.Server
	AccountSID, AuthToken string
	// OnRequest, when set, is called with the idempotency token of each
	// request as it arrives; tests use it to act while a send is in flight.
	OnRequest func(token string)
	faults

	mu        sync.Mutex
	delivered []SMS
	byToken   map[string]SMS
	requests  []string // the idempotency token of every request, in order
}

// NewTwilio starts a Twilio gateway on loopback, closed in t.Cleanup.
func NewTwilio(t testing.TB) *Twilio {
	g := &Twilio{AccountSID: "AC0123456789abcdef0123456789abcdef", AuthToken: "secret-token", byToken: map[string]SMS{}}
	g.Server = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.Close)
	return g
}

func twilioError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status})
}

func (g *Twilio) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+g.AccountSID+"/Messages.json" {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource was not found")
		return
	}
	if u, p, ok := r.BasicAuth(); !ok || u != g.AccountSID || p != g.AuthToken {
		twilioError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		twilioError(w, http.StatusBadRequest, 20001, "Content-Type must be form-encoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		twilioError(w, http.StatusBadRequest, 20001, "Bad form")
		return
	}
	token := r.Header.Get("I-Twilio-Idempotency-Token")
	g.mu.Lock()
	g.requests = append(g.requests, token)
	g.mu.Unlock()
	if g.OnRequest != nil {
		g.OnRequest(token)
	}
	f, _ := g.next()
	if f.Status != 0 {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		code := 20500
		if f.Status == http.StatusTooManyRequests {
			code = 20429
		}
		twilioError(w, f.Status, code, http.StatusText(f.Status))
		return
	}
	to, body := r.PostForm.Get("To"), r.PostForm.Get("Body")
	from := r.PostForm.Get("From") + r.PostForm.Get("MessagingServiceSid")
	switch {
	case to == "" || !strings.HasPrefix(to, "+"):
		twilioError(w, http.StatusBadRequest, 21211, fmt.Sprintf("The 'To' number %s is not a valid phone number.", to))
		return
	case body == "":
		twilioError(w, http.StatusBadRequest, 21602, "Message body is required.")
		return
	case from == "":
		twilioError(w, http.StatusBadRequest, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message")
		return
	}
	g.mu.Lock()
	m, seen := g.byToken[token]
	if !seen || token == "" {
		m = SMS{SID: fmt.Sprintf("SM%032x", len(g.delivered)+1), To: to, From: from, Body: body, IdempotencyToken: token}
		g.delivered = append(g.delivered, m)
		if token != "" {
			g.byToken[token] = m
		}
	}
	g.mu.Unlock()
	if f.Hang {
		<-r.Context().Done() // accepted; the answer never comes
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"sid": m.SID, "account_sid": g.AccountSID, "to": m.To, "from": m.From,
		"body": m.Body, "status": "queued", "num_segments": "1", "error_code": nil, "error_message": nil})
}

// Delivered returns the messages delivered so far, each once.
func (g *Twilio) Delivered() []SMS {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]SMS(nil), g.delivered...)
}

// Requests returns the idempotency token of every request received.
func (g *Twilio) Requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.requests...)
}
