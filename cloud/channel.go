package cloud

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The senders below are the ports of the messaging: one interface per
// channel kind, implemented by one small adapter package per provider
// (cloud/smtp, cloud/twilio, cloud/fcm), so another provider is one more
// package. A sender does one message: it retries what the provider says is
// temporary (5xx, 429 after Retry-After, a timeout) with backoff inside the
// call, always under msg's idempotency key, and returns the provider's id
// for the message, or an error that is final for this attempt.

// EmailSender sends e-mails.
type EmailSender interface {
	// SendEmail sends one e-mail and returns its Message-ID.
	SendEmail(ctx context.Context, msg *OutboundEmail) (providerID string, err error)
}

// SMSSender sends text messages.
type SMSSender interface {
	// SendSMS sends one SMS and returns the gateway's message id.
	SendSMS(ctx context.Context, msg *OutboundSMS) (providerID string, err error)
}

// PushSender sends app push notifications.
type PushSender interface {
	// SendPush sends one notification and returns the gateway's message id.
	// A token the gateway no longer knows is a *SendError with
	// Unregistered set: the app was removed.
	SendPush(ctx context.Context, msg *OutboundPush) (providerID string, err error)
}

// OutboundEmail is an e-mail to one member.
type OutboundEmail struct {
	To, ToName string
	Subject    string
	Text, HTML string
	Language   string
	// IdempotencyKey makes the Message-ID: a resent e-mail has the same.
	IdempotencyKey string
	// UnsubscribeURL is the one-click (RFC 8058) unsubscribe link, if any.
	UnsubscribeURL string
}

// OutboundSMS is an SMS to one mobile number (E.164, "+39...").
type OutboundSMS struct {
	To, Text       string
	IdempotencyKey string
}

// OutboundPush is a notification to one app installation.
type OutboundPush struct {
	Token                 string
	Title, Subtitle, Text string
	ImageURL, Link        string
	IdempotencyKey        string
}

// SendError is a failed send as the provider reported it.
type SendError struct {
	Provider string // "smtp", "twilio", "fcm"
	Status   int    // HTTP status or SMTP reply code; 0 when there was no answer
	Code     string // the provider's error code ("21211", "UNREGISTERED")
	Message  string
	// Temporary is set when trying again later may succeed (5xx, 429, a
	// timeout); the sender already retried it as long as it was allowed.
	Temporary bool
	// Unknown is set when the request was written but no answer came: the
	// provider may have accepted it. Retries use the same idempotency key.
	Unknown bool
	// Unregistered is set for a push token the gateway no longer knows.
	Unregistered bool
}

func (e *SendError) Error() string {
	s := e.Provider
	if e.Status != 0 {
		s += fmt.Sprintf(" %d", e.Status)
	}
	if e.Code != "" {
		s += " " + e.Code
	}
	s += ": " + e.Message
	if e.Unknown {
		s += " (outcome unknown: the gateway may have accepted it)"
	}
	return s
}

// ErrNotConfigured is wrapped by the error of a send on a channel that has
// no gateway configured ("sms gateway not configured").
var ErrNotConfigured = errors.New("gateway not configured")

// NotConfigured returns the error of a send on channel ch without a
// gateway: "sms gateway not configured"; errors.Is finds ErrNotConfigured.
func NotConfigured(ch Channel) error {
	name := map[Channel]string{ChannelEmail: "smtp server", ChannelSMS: "sms gateway", ChannelPush: "push gateway"}[ch]
	return notConfiguredError(name)
}

type notConfiguredError string

func (e notConfiguredError) Error() string      { return string(e) + " not configured" }
func (notConfiguredError) Is(target error) bool { return target == ErrNotConfigured }

// MessageStatus is where one member's message stands.
type MessageStatus string

// Message statuses: a message is stored pending before it is sent, then sent
// or failed; a skipped member is recorded as skipped.
const (
	MessagePending MessageStatus = "pending"
	MessageSent    MessageStatus = "sent"
	MessageFailed  MessageStatus = "failed"
	MessageSkipped MessageStatus = "skipped"
)

// Message is one member's entry in the send history: the message, or the
// skip, of a communication.
type Message struct {
	ID              int64         `json:"id"`
	TenantID        int64         `json:"-"`
	CommunicationID int64         `json:"communication_id"`
	MemberID        int64         `json:"member_id"`
	Channel         Channel       `json:"channel"`
	Purpose         Purpose       `json:"purpose"`
	Status          MessageStatus `json:"status"`
	SkipReason      SkipReason    `json:"skip_reason,omitempty"`
	// To is where it went (address, number; a push token is not shown).
	To         string     `json:"to"`
	Subject    string     `json:"subject,omitempty"` // the e-mail subject or push title
	ProviderID string     `json:"provider_id"`
	Error      string     `json:"error"`
	Attempts   int        `json:"attempts"`
	CreatedAt  time.Time  `json:"created_at"`
	SentAt     *time.Time `json:"sent_at"`
}

// CommunicationKind tells a message send from CRM actions created for
// every member.
type CommunicationKind string

// Communication kinds.
const (
	CommMessage CommunicationKind = "message"
	CommCRM     CommunicationKind = "crm"
)

// CommunicationStatus is where a communication job stands: queued →
// running → done, or failed after CommunicationMaxAttempts internal errors.
type CommunicationStatus string

// Communication statuses.
const (
	CommQueued  CommunicationStatus = "queued"
	CommRunning CommunicationStatus = "running"
	CommDone    CommunicationStatus = "done"
	CommFailed  CommunicationStatus = "failed"
)

// CommunicationMaxAttempts is how many internal errors a job survives.
const CommunicationMaxAttempts = 3

// MaxRecipients bounds the members of one communication.
const MaxRecipients = 50000

// Communication is a send to a list of members (or to a target's members)
// and its progress. It is a job: stored before anything is sent, run in the
// background, resumed after a restart.
type Communication struct {
	ID         int64               `json:"id"`
	TenantID   int64               `json:"-"`
	Kind       CommunicationKind   `json:"kind"`
	Status     CommunicationStatus `json:"status"`
	TemplateID *int64              `json:"template_id"`
	Delivery   Delivery            `json:"channel,omitempty"`
	Purpose    Purpose             `json:"purpose"`
	DedupKey   string              `json:"dedup_key"`
	// TargetID is the saved search the members came from, if any.
	TargetID *int64 `json:"target_id"`
	// Progress: Members listed, Processed planned so far; the counts of
	// messages sent, failed and pending, and of members skipped (their
	// reasons in SkipCounts).
	Members    int                `json:"members"`
	Processed  int                `json:"processed"`
	Sent       int                `json:"sent"`
	Failed     int                `json:"failed"`
	Pending    int                `json:"pending"`
	Skipped    int                `json:"skipped"`
	SkipCounts map[SkipReason]int `json:"skip_counts"`
	// Actions is how many CRM actions a CRM communication created.
	Actions    int        `json:"actions"`
	Failure    string     `json:"failure,omitempty"`
	CreatedBy  int64      `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// Finished reports whether the job has ended, well or not.
func (c *Communication) Finished() bool { return c.Status == CommDone || c.Status == CommFailed }

// Result is the communication's counts as a Communicator reports them.
func (c *Communication) Result() CommunicationResult {
	return CommunicationResult{Sent: c.Sent, Skipped: c.Skipped, Failed: c.Failed}
}

// SendRequest asks to send a template to members. MemberIDs or TargetID
// name them (targets are evaluated by the target service).
type SendRequest struct {
	TemplateID int64    `json:"template_id"`
	Channel    Delivery `json:"channel"`
	Purpose    Purpose  `json:"purpose"`
	MemberIDs  []int64  `json:"member_ids"`
	TargetID   *int64   `json:"target_id"`
	// DedupKey makes the send idempotent: a member is sent at most one
	// message per key. Empty: a key of its own ("communication:<id>").
	DedupKey string `json:"dedup_key"`
}

// Validate checks what needs no database.
func (r *SendRequest) Validate() error {
	if r.TemplateID <= 0 {
		return Invalid("template_id", "A template is required.")
	}
	if r.Purpose == "" {
		return Invalid("purpose", "A GDPR purpose is required.")
	}
	if !r.Purpose.Valid() {
		return Invalid("purpose", "Unknown GDPR purpose %q.", r.Purpose)
	}
	switch {
	case r.TargetID != nil && len(r.MemberIDs) > 0:
		return Invalid("target_id", "Give a target or a list of members, not both.")
	case r.TargetID != nil:
		return nil // its members are looked up when the send is prepared
	case len(r.MemberIDs) == 0:
		return Invalid("member_ids", "At least one member, or a target, is required.")
	}
	if len(r.MemberIDs) > MaxRecipients {
		return Invalid("member_ids", "At most %d members at once.", MaxRecipients)
	}
	if len(r.DedupKey) > 200 {
		return Invalid("dedup_key", "At most 200 characters.")
	}
	return nil
}

// PreviewMessage is one rendered message of a preview.
type PreviewMessage struct {
	MemberID int64 `json:"member_id"`
	Outgoing
}

// Preview is what a send would do, computed without sending: the messages
// rendered for the first members, how many go on each channel, and who is
// skipped and why.
type Preview struct {
	Members    int                `json:"members"`
	Channels   map[Channel]int    `json:"channels"`
	Skipped    int                `json:"skipped"`
	SkipCounts map[SkipReason]int `json:"skip_counts"`
	Skips      []Skip             `json:"skips"` // the first PreviewSkips
	Messages   []PreviewMessage   `json:"messages"`
}

// PreviewSkips bounds the skips a preview lists.
const PreviewSkips = 100

// CRMRequest asks to create a CRM action of a type, with a text for the
// operators, for every listed member that is not archived.
type CRMRequest struct {
	TypeID     int64    `json:"type_id"`
	Text       string   `json:"text"`
	Purpose    Purpose  `json:"purpose"`
	CompleteBy Date     `json:"complete_by"`
	OperatorID *int64   `json:"operator_id"`
	MemberIDs  []int64  `json:"member_ids"`
	TargetID   *int64   `json:"target_id"`
	Tags       []string `json:"tags"`
}

// CommunicationService sends communications. Admins and CRM managers send;
// any operator reads the history.
type CommunicationService interface {
	// PreviewCommunication plans req without sending; first is how many
	// rendered messages to return.
	PreviewCommunication(ctx context.Context, req SendRequest, first int) (*Preview, error)
	// CreateCommunication stores req as a job, sent in the background.
	CreateCommunication(ctx context.Context, req SendRequest) (*Communication, error)
	// CreateCRMCommunication creates the actions at once, all or none.
	CreateCRMCommunication(ctx context.Context, req CRMRequest) (*Communication, error)
	// FindCommunicationByID returns ENOTFOUND if it is not the tenant's.
	FindCommunicationByID(ctx context.Context, id int64) (*Communication, error)
	// FindCommunications lists the tenant's communications, newest first.
	FindCommunications(ctx context.Context, cursor int64, limit int) ([]*Communication, error)
	// FindMessages pages through the messages of a communication
	// (communicationID > 0) or of a member (memberID > 0), newest first.
	FindMessages(ctx context.Context, f MessageFilter) ([]*Message, error)
	// RegisterPushToken records a member's app installation.
	RegisterPushToken(ctx context.Context, memberID int64, token, platform string) error
	// Unsubscribe withdraws the e-mail consent that the message with this
	// unsubscribe token was sent under; it needs no operator.
	Unsubscribe(ctx context.Context, token string) error
}

// MessageFilter selects messages: of a communication or of a member.
type MessageFilter struct {
	CommunicationID int64
	MemberID        int64
	Cursor          int64
	Limit           int
}
