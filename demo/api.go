package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// api is a client of varco-cloud's JSON API, as a staff member's browser
// or an integration uses it.
type api struct {
	base  string // http://127.0.0.1:port
	token string
	http  *http.Client
}

func newAPI(base string) *api {
	return &api{base: base, http: &http.Client{Timeout: 30 * time.Second}}
}

// apiError is a response with an unexpected status.
type apiError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Status, strings.TrimSpace(e.Body))
}

// do sends body as JSON and decodes a 2xx answer into out (when not nil).
func (a *api) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &apiError{Method: method, Path: path, Status: resp.StatusCode, Body: string(b)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode %s: %w", method, path, b, err)
		}
	}
	return nil
}

// healthy reports whether /healthz answers 200.
func (a *api) healthy(ctx context.Context) bool {
	return a.do(ctx, http.MethodGet, "/healthz", nil, nil) == nil
}

// login signs in and keeps the session token for the next requests.
func (a *api) login(ctx context.Context, email, password string) error {
	var out struct {
		Token string `json:"token"`
	}
	if err := a.do(ctx, http.MethodPost, "/api/v1/auth/login", map[string]string{"email": email, "password": password}, &out); err != nil {
		return err
	}
	a.token = out.Token
	return nil
}

// create POSTs body and returns the id of what was created.
func (a *api) create(ctx context.Context, path string, body any) (int64, error) {
	var out struct {
		ID int64 `json:"id"`
	}
	err := a.do(ctx, http.MethodPost, path, body, &out)
	return out.ID, err
}
