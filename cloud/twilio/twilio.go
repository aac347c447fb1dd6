// Package twilio sends SMS through Twilio's Programmable Messaging REST API
// (https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource):
//
//	POST {BaseURL}/2010-04-01/Accounts/{AccountSid}/Messages.json
//	Authorization: Basic base64(AccountSid:AuthToken)
//	Content-Type: application/x-www-form-urlencoded
//	To=+39333...&From=+1555...&Body=...   (or MessagingServiceSid=MG... instead of From)
//
// A created message is 201 with a JSON Message resource ({"sid": "SM...",
// "status": "queued", ...}); an error is a JSON object {"code": 21211,
// "message": "...", "more_info": "https://www.twilio.com/docs/errors/21211",
// "status": 400} (https://www.twilio.com/docs/api/errors). 429 (code 20429)
// and 5xx are retried with backoff, honouring Retry-After.
//
// Idempotency: every try of one message carries the same
// I-Twilio-Idempotency-Token header, the message's idempotency key. Twilio
// names this header on the requests it makes itself (webhooks), and
// gateways in front of it dedupe on it; Twilio's public Messages API does
// not promise to. The guarantee that a member is not sent the message twice
// is therefore the caller's: the message row is stored, pending, under that
// key before the first try, and a try whose answer was lost (a timeout after
// the request was written) is retried only with the same key.
package twilio

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"varco.dev/cloud"
	"varco.dev/cloud/internal/retry"
)

// DefaultBaseURL is Twilio's REST API.
const DefaultBaseURL = "https://api.twilio.com"

// IdempotencyHeader carries a message's idempotency key on every try.
const IdempotencyHeader = "I-Twilio-Idempotency-Token"

var _ cloud.SMSSender = (*Client)(nil)

// Client sends SMS through Twilio. AccountSID and AuthToken are required,
// and From or MessagingServiceSID.
type Client struct {
	BaseURL             string // default DefaultBaseURL
	AccountSID          string
	AuthToken           string
	From                string // sender number or alphanumeric id
	MessagingServiceSID string // used instead of From when set
	HTTPClient          *http.Client
	// Timeout bounds one try (default 15s); Retry says how to retry.
	Timeout time.Duration
	Retry   retry.Policy
}

// Validate checks the settings before the client is used.
func (c *Client) Validate() error {
	if c.AccountSID == "" || c.AuthToken == "" {
		return fmt.Errorf("twilio: account SID and auth token are required")
	}
	if c.From == "" && c.MessagingServiceSID == "" {
		return fmt.Errorf("twilio: a From number or a messaging service SID is required")
	}
	if _, err := url.Parse(cmp.Or(c.BaseURL, DefaultBaseURL)); err != nil {
		return fmt.Errorf("twilio: base URL: %w", err)
	}
	return nil
}

// apiError is Twilio's error body.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// SendSMS creates one Message resource and returns its SID.
func (c *Client) SendSMS(ctx context.Context, msg *cloud.OutboundSMS) (string, error) {
	form := url.Values{"To": {msg.To}, "Body": {msg.Text}}
	if c.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", c.MessagingServiceSID)
	} else {
		form.Set("From", c.From)
	}
	body := form.Encode()
	endpoint := strings.TrimSuffix(cmp.Or(c.BaseURL, DefaultBaseURL), "/") + "/2010-04-01/Accounts/" + url.PathEscape(c.AccountSID) + "/Messages.json"
	resp, err := retry.DoHTTP(ctx, cmp.Or(c.HTTPClient, http.DefaultClient), c.Retry, cmp.Or(c.Timeout, 15*time.Second),
		func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.SetBasicAuth(c.AccountSID, c.AuthToken)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "application/json")
			req.Header.Set(IdempotencyHeader, msg.IdempotencyKey)
			return req, nil
		})
	if err != nil {
		return "", &cloud.SendError{Provider: "twilio", Message: err.Error(), Temporary: true, Unknown: retry.Written(err)}
	}
	if resp.Status == http.StatusCreated || resp.Status == http.StatusOK {
		var m struct {
			SID       string `json:"sid"`
			Status    string `json:"status"`
			ErrorCode *int   `json:"error_code"`
		}
		if err := json.Unmarshal(resp.Body, &m); err != nil || m.SID == "" {
			return "", &cloud.SendError{Provider: "twilio", Status: resp.Status, Message: fmt.Sprintf("unreadable answer: %.200s", resp.Body), Unknown: true}
		}
		if m.Status == "failed" || m.Status == "undelivered" {
			code := ""
			if m.ErrorCode != nil {
				code = strconv.Itoa(*m.ErrorCode)
			}
			return m.SID, &cloud.SendError{Provider: "twilio", Status: resp.Status, Code: code, Message: "message " + m.Status}
		}
		return m.SID, nil
	}
	var e apiError
	_ = json.Unmarshal(resp.Body, &e)
	serr := &cloud.SendError{Provider: "twilio", Status: resp.Status, Message: cmp.Or(e.Message, http.StatusText(resp.Status)),
		Temporary: retry.Retryable(resp.Status)}
	if e.Code != 0 {
		serr.Code = strconv.Itoa(e.Code)
	}
	return "", serr
}
