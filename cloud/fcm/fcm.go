// Package fcm sends app push notifications through Firebase Cloud
// Messaging's HTTP v1 API
// (https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send):
//
//	POST {BaseURL}/v1/projects/{project}/messages:send
//	Authorization: Bearer <OAuth 2.0 access token of a service account>
//	{"message": {"token": "...", "notification": {"title", "body", "image"}, "data": {...},
//	             "android": {...}, "apns": {...}, "webpush": {...}}}
//
// A sent message is 200 {"name": "projects/{project}/messages/{id}"}; an
// error is {"error": {"code", "message", "status", "details": [{"@type":
// "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode":
// "UNREGISTERED"}]}} (https://firebase.google.com/docs/cloud-messaging/error-codes).
// 429 (QUOTA_EXCEEDED), 500 (INTERNAL) and 503 (UNAVAILABLE) are retried
// with backoff, honouring Retry-After; 404 UNREGISTERED means the app was
// removed from the device.
//
// FCM has no subtitle in its common notification: the subtitle goes in the
// APNs alert (iOS shows it) and in data["subtitle"] for the app. The link
// goes in data["link"] and webpush.fcm_options.link.
//
// Idempotency: FCM has no idempotency header. Every try of one message
// carries the same data["message_id"] (the message's idempotency key, which
// the app uses to drop a duplicate), android.collapse_key and the
// apns-collapse-id header (a duplicate replaces the first notification on
// the device rather than adding a second one). The caller stores the
// message, pending, under that key before the first try, and retries a try
// whose answer was lost only with the same key.
package fcm

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"varco.dev/cloud"
	"varco.dev/cloud/internal/retry"
)

// DefaultBaseURL is FCM's API.
const DefaultBaseURL = "https://fcm.googleapis.com"

var _ cloud.PushSender = (*Client)(nil)

// Client sends push notifications through FCM. ProjectID and AccessToken
// are required.
type Client struct {
	BaseURL   string // default DefaultBaseURL
	ProjectID string
	// AccessToken returns the OAuth 2.0 bearer token for a try (a service
	// account's, scope https://www.googleapis.com/auth/firebase.messaging).
	AccessToken func(ctx context.Context) (string, error)
	HTTPClient  *http.Client
	// Timeout bounds one try (default 15s); Retry says how to retry.
	Timeout time.Duration
	Retry   retry.Policy
}

// StaticToken returns an AccessToken func for a fixed token.
func StaticToken(token string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return token, nil }
}

// Validate checks the settings before the client is used.
func (c *Client) Validate() error {
	if c.ProjectID == "" || c.AccessToken == nil {
		return fmt.Errorf("fcm: project ID and access token are required")
	}
	if _, err := url.Parse(cmp.Or(c.BaseURL, DefaultBaseURL)); err != nil {
		return fmt.Errorf("fcm: base URL: %w", err)
	}
	return nil
}

// Request is the body of messages:send.
type Request struct {
	Message Message `json:"message"`
}

// Message is FCM's v1 Message resource, the parts varco uses.
type Message struct {
	Token        string            `json:"token"`
	Notification *Notification     `json:"notification,omitempty"`
	Data         map[string]string `json:"data,omitempty"`
	Android      *AndroidConfig    `json:"android,omitempty"`
	APNS         *APNSConfig       `json:"apns,omitempty"`
	Webpush      *WebpushConfig    `json:"webpush,omitempty"`
}

// Notification is the notification shown on every platform.
type Notification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
	Image string `json:"image,omitempty"`
}

// AndroidConfig carries the collapse key.
type AndroidConfig struct {
	CollapseKey string `json:"collapse_key,omitempty"`
}

// APNSConfig carries the APNs headers and payload (the subtitle).
type APNSConfig struct {
	Headers map[string]string `json:"headers,omitempty"`
	Payload map[string]any    `json:"payload,omitempty"`
}

// WebpushConfig carries the link opened on click.
type WebpushConfig struct {
	FCMOptions map[string]string `json:"fcm_options,omitempty"`
}

// Build returns the messages:send body for msg.
func Build(msg *cloud.OutboundPush) *Request {
	data := map[string]string{"message_id": msg.IdempotencyKey}
	if msg.Subtitle != "" {
		data["subtitle"] = msg.Subtitle
	}
	if msg.Link != "" {
		data["link"] = msg.Link
	}
	alert := map[string]string{"title": msg.Title, "body": msg.Text}
	if msg.Subtitle != "" {
		alert["subtitle"] = msg.Subtitle
	}
	m := Message{
		Token:        msg.Token,
		Notification: &Notification{Title: msg.Title, Body: msg.Text, Image: msg.ImageURL},
		Data:         data,
		Android:      &AndroidConfig{CollapseKey: msg.IdempotencyKey},
		APNS: &APNSConfig{Headers: map[string]string{"apns-collapse-id": msg.IdempotencyKey},
			Payload: map[string]any{"aps": map[string]any{"alert": alert, "mutable-content": 1}}},
	}
	if msg.Link != "" {
		m.Webpush = &WebpushConfig{FCMOptions: map[string]string{"link": msg.Link}}
	}
	return &Request{Message: m}
}

// apiError is a Google API error body.
type apiError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type      string `json:"@type"`
			ErrorCode string `json:"errorCode"`
		} `json:"details"`
	} `json:"error"`
}

// SendPush sends one notification and returns its name.
func (c *Client) SendPush(ctx context.Context, msg *cloud.OutboundPush) (string, error) {
	body, err := json.Marshal(Build(msg))
	if err != nil {
		return "", fmt.Errorf("fcm: encode: %w", err)
	}
	endpoint := strings.TrimSuffix(cmp.Or(c.BaseURL, DefaultBaseURL), "/") + "/v1/projects/" + url.PathEscape(c.ProjectID) + "/messages:send"
	resp, err := retry.DoHTTP(ctx, cmp.Or(c.HTTPClient, http.DefaultClient), c.Retry, cmp.Or(c.Timeout, 15*time.Second),
		func(ctx context.Context) (*http.Request, error) {
			token, err := c.AccessToken(ctx)
			if err != nil {
				return nil, fmt.Errorf("access token: %w", err)
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json; charset=utf-8")
			return req, nil
		})
	if err != nil {
		return "", &cloud.SendError{Provider: "fcm", Message: err.Error(), Temporary: true, Unknown: retry.Written(err)}
	}
	if resp.Status == http.StatusOK {
		var ok struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(resp.Body, &ok); err != nil || ok.Name == "" {
			return "", &cloud.SendError{Provider: "fcm", Status: resp.Status, Message: fmt.Sprintf("unreadable answer: %.200s", resp.Body), Unknown: true}
		}
		return ok.Name, nil
	}
	var e apiError
	_ = json.Unmarshal(resp.Body, &e)
	serr := &cloud.SendError{Provider: "fcm", Status: resp.Status, Code: e.Error.Status,
		Message: cmp.Or(e.Error.Message, http.StatusText(resp.Status)), Temporary: retry.Retryable(resp.Status)}
	for _, d := range e.Error.Details {
		if strings.HasSuffix(d.Type, "google.firebase.fcm.v1.FcmError") && d.ErrorCode != "" {
			serr.Code = d.ErrorCode
		}
	}
	serr.Unregistered = serr.Code == "UNREGISTERED"
	return "", serr
}
