package cloud

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"varco.dev/protocol/sync"
)

// Edge is a varco-edge daemon of a site: a turnstile controller that
// decides from its own cache and reports to the cloud over MQTT. Its Code is
// its sync id, chosen by the installer; it logs in to the broker as
// MQTTUsername with a password the cloud generates and shows once.
type Edge struct {
	ID           int64      `json:"id"`
	TenantID     int64      `json:"-"`
	SiteID       int64      `json:"site_id"`
	Code         string     `json:"code"`
	Name         string     `json:"name"`
	MQTTUsername string     `json:"mqtt_username"`
	Status       EdgeStatus `json:"status"`
	Version      int        `json:"version"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// EdgeStatus is what the cloud knows of an edge from what it sent: its
// Birth on every connect, its online status (and last will), its events.
type EdgeStatus struct {
	Online bool `json:"online"`
	// BootID identifies the edge's current run, in hex ("" before its
	// first Birth): a change tells of a restart.
	BootID       string `json:"boot_id"`
	CacheVersion uint64 `json:"cache_version"`
	// SiteVersion is the last version of the site's state the cloud
	// published; Lag is how far behind it the edge's cache was when the
	// edge last reported its version (it does so at most once a second).
	SiteVersion     uint64       `json:"site_version"`
	Lag             uint64       `json:"lag"`
	Software        string       `json:"software"`
	ProtocolVersion int          `json:"protocol_version"`
	Readers         []EdgeReader `json:"readers"`
	LastSeenAt      *time.Time   `json:"last_seen_at"`
	LastBirthAt     *time.Time   `json:"last_birth_at"`
	// StatusTime is the edge's time of the status kept.
	StatusTime *time.Time `json:"status_time"`
	// AckedSeq is the high-water mark of the edge's journal: every event up
	// to it is stored. JournalEpoch counts the journals the edge has had
	// (a new disk starts a new one).
	AckedSeq     uint64 `json:"acked_seq"`
	JournalEpoch int    `json:"journal_epoch"`
}

// EdgeReader is a reader of an edge as its last Birth described it.
type EdgeReader struct {
	ID         string     `json:"id"`
	DeviceType DeviceType `json:"device_type"`
	Online     bool       `json:"online"`
	Rows       int        `json:"rows,omitempty"`
	Cols       int        `json:"cols,omitempty"`
}

// EdgeReaders converts the readers of a Birth.
func EdgeReaders(rs []sync.Reader) []EdgeReader {
	out := make([]EdgeReader, len(rs))
	for i, r := range rs {
		out[i] = EdgeReader{ID: r.ID, DeviceType: DeviceType(r.Device.String()), Online: r.Online, Rows: int(r.Rows), Cols: int(r.Cols)}
	}
	return out
}

// Validate checks an edge before it is created or changed.
func (e *Edge) Validate() error {
	if err := sync.ValidateID(e.Code); err != nil {
		return Invalid("code", "The code must be 1 to %d lowercase letters, digits or dashes (not first).", sync.MaxIDLen)
	}
	e.Name = strings.TrimSpace(e.Name)
	if e.Name == "" || utf8.RuneCountInString(e.Name) > 100 {
		return Invalid("name", "A name of at most 100 characters is required.")
	}
	if e.SiteID <= 0 {
		return Invalid("site_id", "Site is required.")
	}
	return nil
}

// RowVersion implements Versioned.
func (e *Edge) RowVersion() int { return e.Version }

// EdgeUpdate holds the fields of an edge that can change. Moving an edge to
// another site changes the state topic it may read from its next connect.
type EdgeUpdate struct {
	Name   *string `json:"name"`
	SiteID *int64  `json:"site_id"`
}

// EdgeSecret is an edge with what it needs to log in to the broker: shown
// once, when the edge is created or its password rotated. The cloud keeps
// only a hash of the password.
type EdgeSecret struct {
	Edge     *Edge  `json:"edge"`
	Username string `json:"mqtt_username"`
	Password string `json:"mqtt_password"`
	// BrokerURL is where the cloud tells edges to connect.
	BrokerURL string `json:"broker_url"`
}

// EdgeService manages a tenant's edges. Writes need the admin role; every
// operator may read them.
type EdgeService interface {
	// CreateEdge creates an edge with a new password and returns it with
	// its secret. Returns ECONFLICT if the code is taken in the tenant,
	// EINVALID if the site is not one of the tenant's.
	CreateEdge(ctx context.Context, e *Edge) (*EdgeSecret, error)
	FindEdges(ctx context.Context) ([]*Edge, error)
	// FindEdgeByID returns ENOTFOUND if the edge does not exist in the tenant.
	FindEdgeByID(ctx context.Context, id int64) (*Edge, error)
	// UpdateEdge returns EPRECONDITION when version is not the stored one.
	UpdateEdge(ctx context.Context, id int64, version int, upd EdgeUpdate) (*Edge, error)
	// DeleteEdge retires an edge: the broker refuses its credentials from
	// its next connect, the cloud drops what it still sends, and its code
	// is free again; its events stay.
	DeleteEdge(ctx context.Context, id int64, version int) error
	// RotateEdgePassword gives the edge a new password; the old one stops
	// working from the edge's next connect.
	RotateEdgePassword(ctx context.Context, id int64) (*EdgeSecret, error)
	// EdgeConfig returns what the edge's configuration file needs; admins
	// only, as it holds the tenant's credential key.
	EdgeConfig(ctx context.Context, id int64) (*EdgeConfig, error)
}

// EdgeConfig is what an installer writes into an edge's edge.toml, besides
// its readers: its ids, the tenant's credential key (to hash what readers
// read as the cloud did), the cloud's public keys (to verify what the cloud
// sends) and its broker account, without the password (shown only when the
// edge is created or its password rotated).
type EdgeConfig struct {
	Tenant string `json:"tenant"`
	Site   string `json:"site"`
	EdgeID string `json:"edge_id"`
	// CredentialKey is the tenant's HMAC key, in hex: a secret.
	CredentialKey string `json:"credential_key"`
	// CloudKeys are the cloud_keys lines: "<key id>=<base64 public key>".
	CloudKeys    []string `json:"cloud_keys"`
	MQTTBroker   string   `json:"mqtt_broker"`
	MQTTUsername string   `json:"mqtt_username"`
}

// CommandOp is what a command asks an edge to do.
type CommandOp string

// The command operations (protocol/sync CommandOp).
const (
	CommandOpen   CommandOp = "open"   // open a reader's gate once: the staff override
	CommandResync CommandOp = "resync" // reload the site's state from a snapshot
	CommandShow   CommandOp = "show"   // show a text on a reader's display
)

// CommandStatus is where a command is: queued (stored, not yet handed to
// the broker), sent (the broker has it), done (the edge reported it carried
// it out), expired (not done by its expiry: the edge will not carry it out).
type CommandStatus string

// The command statuses.
const (
	CommandQueued  CommandStatus = "queued"
	CommandSent    CommandStatus = "sent"
	CommandDone    CommandStatus = "done"
	CommandExpired CommandStatus = "expired"
)

// Limits of commands.
const (
	DefaultCommandTTL = time.Minute
	MaxCommandTTL     = time.Hour
)

// CommandRequest is what staff ask of an edge.
type CommandRequest struct {
	Op     CommandOp `json:"op"`
	Reader string    `json:"reader"`
	Text   string    `json:"text"`
	// Seconds is how long a shown text stays (show only).
	Seconds int `json:"seconds"`
	// ExpiresIn is how many seconds the command may wait to be carried out;
	// DefaultCommandTTL when 0.
	ExpiresIn int `json:"expires_in"`
}

// TTL is how long the command may wait.
func (r *CommandRequest) TTL() time.Duration {
	if r.ExpiresIn == 0 {
		return DefaultCommandTTL
	}
	return time.Duration(r.ExpiresIn) * time.Second
}

// Validate checks a command request: the fields its op needs and only those.
func (r *CommandRequest) Validate() error {
	if r.ExpiresIn < 0 || time.Duration(r.ExpiresIn)*time.Second > MaxCommandTTL {
		return Invalid("expires_in", "Must be from 1 to %d seconds.", int(MaxCommandTTL.Seconds()))
	}
	switch r.Op {
	case CommandOpen, CommandShow:
		if sync.ValidateID(r.Reader) != nil {
			return Invalid("reader", "The id of one of the edge's readers is required.")
		}
	case CommandResync:
		if r.Reader != "" {
			return Invalid("reader", "A resync is for the whole edge: no reader.")
		}
	default:
		return Invalid("op", "Op must be open, resync or show.")
	}
	if r.Op != CommandShow {
		if r.Text != "" || r.Seconds != 0 {
			return Invalid("text", "Only a show command has a text.")
		}
		return nil
	}
	if strings.TrimSpace(r.Text) == "" || len(r.Text) > sync.MaxTextLen || !utf8.ValidString(r.Text) {
		return Invalid("text", "A text of at most %d bytes is required.", sync.MaxTextLen)
	}
	if strings.ContainsFunc(r.Text, func(c rune) bool { return c != '\n' && unicode.IsControl(c) }) {
		return Invalid("text", "The text may hold line breaks but no other control characters.")
	}
	if r.Seconds < 1 || r.Seconds > sync.MaxShowSeconds {
		return Invalid("seconds", "Must be from 1 to %d.", sync.MaxShowSeconds)
	}
	return nil
}

// WireOp is the command's op on the wire.
func (op CommandOp) WireOp() sync.CommandOp {
	switch op {
	case CommandOpen:
		return sync.CmdOpen
	case CommandResync:
		return sync.CmdResync
	case CommandShow:
		return sync.CmdShow
	}
	return 0
}

// EdgeCommand is a command sent to an edge, and what became of it.
type EdgeCommand struct {
	ID        int64         `json:"id"`
	EdgeID    int64         `json:"edge_id"`
	Op        CommandOp     `json:"op"`
	Reader    string        `json:"reader,omitempty"`
	Text      string        `json:"text,omitempty"`
	Seconds   int           `json:"seconds,omitempty"`
	Status    CommandStatus `json:"status"`
	CreatedBy *int64        `json:"created_by"`
	CreatedAt time.Time     `json:"created_at"`
	ExpiresAt time.Time     `json:"expires_at"`
	SentAt    *time.Time    `json:"sent_at"`
	DoneAt    *time.Time    `json:"done_at"`
}

// CommandService sends commands to a tenant's edges. Any operator may send
// one; each is audited.
type CommandService interface {
	// SendCommand records the command and publishes it, signed, to the
	// edge. A command the broker did not take is returned queued, not as an
	// error. Returns ENOTFOUND if the edge is not one of the tenant's.
	SendCommand(ctx context.Context, edgeID int64, req CommandRequest) (*EdgeCommand, error)
	// FindCommands lists an edge's commands, newest first, with IDs below
	// cursor when it is not 0.
	FindCommands(ctx context.Context, edgeID int64, cursor int64, limit int) ([]*EdgeCommand, error)
}

// Passage is a badge at a reader and the edge's decision, as the edge
// journaled it.
type Passage struct {
	ID           int64     `json:"id"`
	EdgeID       int64     `json:"edge_id"`
	Seq          uint64    `json:"seq"`
	JournalEpoch int       `json:"journal_epoch"`
	At           time.Time `json:"at"`
	ReceivedAt   time.Time `json:"received_at"`
	Reader       string    `json:"reader"`
	Credential   string    `json:"credential,omitempty"` // the credential's key (hash), in hex
	MemberID     *int64    `json:"member_id"`
	Decision     string    `json:"decision"` // grant or deny
	Reason       string    `json:"reason"`   // protocol/sync Reason name
	ActionID     *int64    `json:"action_id"`
}

// PassageFilter selects passages, newest first. Zero fields do not filter.
type PassageFilter struct {
	MemberID int64
	EdgeID   int64
	Reader   string
	From, To time.Time // From inclusive, To exclusive
	Decision string    // "grant" or "deny"
	// Cursor is the NextCursor of the previous page.
	Cursor string
	Limit  int
}

// Validate checks the filter's values.
func (f *PassageFilter) Validate() error {
	if f.Decision != "" && f.Decision != "grant" && f.Decision != "deny" {
		return Invalid("decision", "Must be grant or deny.")
	}
	if f.Reader != "" && sync.ValidateID(f.Reader) != nil {
		return Invalid("reader", "Not a reader id.")
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return Invalid("to", "Must be after from.")
	}
	return nil
}

// PassageService reads the passages that edges reported.
type PassageService interface {
	// FindPassages returns a page of passages and the cursor of the next
	// page ("" at the end). Returns EINVALID for a malformed cursor.
	FindPassages(ctx context.Context, f PassageFilter) (items []*Passage, next string, err error)
}
