package sync

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/bits"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of a Record, checked by Validate.
const (
	MaxCredentials = 16  // credentials of one member
	MaxWindows     = 16  // validity windows of one member
	MaxSites       = 64  // sites in one member's scope
	MaxActions     = 32  // open CRM actions of one member
	MaxNotices     = 16  // display notices of one member
	MaxTextLen     = 256 // bytes of one display text, UTF-8
)

// CredentialKey identifies a credential without revealing it: the first 16
// bytes of HMAC-SHA256(tenant key, canonical credential id). The edge keys its
// cache and the cloud its passages by it, and neither the wire, the edge's
// disk nor the event store holds a card number or a PIN.
//
// In CBOR it is a 16-byte byte string; as text (JSON, logs, config) 32
// lowercase hex digits.
type CredentialKey [16]byte

// CredentialHash returns the key of a credential: HMAC-SHA256 keyed with the
// tenant's secret (32 random bytes, the same for the cloud and every edge of
// the tenant), over the canonical credential id that protocol/wiegand builds
// from what a reader read ("card:123:45678", "pin:1234"), truncated to 128
// bits.
//
// Why keyed: the id space is small (a PIN has at most 10^12 values, a 26-bit
// card 2^24), so a plain hash could be reversed by trying every id; without
// the tenant key that is impossible, and keys of one card differ between
// tenants. Whoever holds an edge's tenant key can still try every id: the key
// protects copies (backups, logs, the cloud's event store, the wire), not a
// compromised edge.
//
// Why 128 bits are enough: a key is an identifier, not a signature. A
// collision between two of n credentials has probability about n²/2¹²⁹, 10⁻²⁷
// for a million credentials; forging a credential that hits a given key needs
// about 2¹²⁸ tries at the reader. Truncating an HMAC to half the hash length
// is allowed by RFC 2104 §5 and NIST SP 800-107, and halves the key's size in
// the cache, on the wire and in the event store.
func CredentialHash(tenantKey []byte, canonicalID string) CredentialKey {
	m := hmac.New(sha256.New, tenantKey)
	io.WriteString(m, canonicalID)
	var sum [sha256.Size]byte
	var k CredentialKey
	copy(k[:], m.Sum(sum[:0]))
	return k
}

// CredentialHasher computes CredentialHash for many credentials of one
// tenant, keeping the keyed HMAC state between calls: the edge hashes every
// badge it reads, and a fresh HMAC costs seven allocations. It is not safe
// for concurrent use; keep one per goroutine.
type CredentialHasher struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

// NewCredentialHasher returns a hasher keyed with the tenant's secret.
func NewCredentialHasher(tenantKey []byte) *CredentialHasher {
	return &CredentialHasher{mac: hmac.New(sha256.New, tenantKey)}
}

// Hash returns CredentialHash(tenantKey, string(canonicalID)).
func (h *CredentialHasher) Hash(canonicalID []byte) CredentialKey {
	h.mac.Reset()
	h.mac.Write(canonicalID)
	var k CredentialKey
	copy(k[:], h.mac.Sum(h.sum[:0]))
	return k
}

// ParseCredentialKey parses the 32 hex digits of a key.
func ParseCredentialKey(s string) (CredentialKey, error) {
	var k CredentialKey
	return k, k.UnmarshalText([]byte(s))
}

// IsZero reports whether k is the zero key, which stands for "no credential".
func (k CredentialKey) IsZero() bool { return k == CredentialKey{} }

// String returns the key in hex.
func (k CredentialKey) String() string { return hex.EncodeToString(k[:]) }

// MarshalText returns the key in hex.
func (k CredentialKey) MarshalText() ([]byte, error) {
	return hex.AppendEncode(nil, k[:]), nil
}

// UnmarshalText parses 32 hex digits.
func (k *CredentialKey) UnmarshalText(text []byte) error {
	if len(text) != 2*len(k) {
		return fmt.Errorf("credential key: %d hex digits, want %d", len(text), 2*len(k))
	}
	var d CredentialKey
	if _, err := hex.Decode(d[:], text); err != nil {
		return fmt.Errorf("credential key: %w", err)
	}
	*k = d
	return nil
}

// UnmarshalBinary takes exactly 16 bytes. The CBOR decoder calls it for the
// key's byte string, so a short or long key is an error instead of being
// zero-padded or cut. (There is no MarshalBinary: the encoder writes the array
// as a byte string without allocating.)
func (k *CredentialKey) UnmarshalBinary(b []byte) error {
	if len(b) != len(k) {
		return fmt.Errorf("credential key of %d bytes, want %d", len(b), len(k))
	}
	copy(k[:], b)
	return nil
}

// Timestamp is a point in time in milliseconds since the Unix epoch, UTC; 0
// means "not set". An integer, not a CBOR time tag: it is smaller, exact and
// needs no tag decoding.
type Timestamp int64

// TimestampOf returns t in milliseconds; the zero time gives 0.
func TimestampOf(t time.Time) Timestamp {
	if t.IsZero() {
		return 0
	}
	return Timestamp(t.UnixMilli())
}

// Time returns the timestamp as a time.Time in UTC; 0 gives the zero time.
func (ts Timestamp) Time() time.Time {
	if ts == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ts)).UTC()
}

func (ts Timestamp) String() string {
	if ts == 0 {
		return "unset"
	}
	return ts.Time().Format("2006-01-02T15:04:05.000Z07:00")
}

// Window is a half-open interval of time [From, Until). A zero From is "since
// always", a zero Until "for ever": the zero Window holds every instant. The
// cloud turns a membership's calendar dates into instants in the site's time
// zone, so the edge needs no time zone data.
type Window struct {
	From  Timestamp `cbor:"1,keyasint,omitempty"`
	Until Timestamp `cbor:"2,keyasint,omitempty"`
}

// Contains reports whether t is in the window.
func (w Window) Contains(t Timestamp) bool {
	return (w.From == 0 || t >= w.From) && (w.Until == 0 || t < w.Until)
}

func (w Window) validate() error {
	switch {
	case w.From < 0 || w.Until < 0:
		return fmt.Errorf("window %d..%d before 1970", w.From, w.Until)
	case w.From != 0 && w.Until != 0 && w.Until <= w.From:
		return fmt.Errorf("window ends (%s) at or before it starts (%s)", w.Until, w.From)
	}
	return nil
}

// DeviceType says what a reader controls. The values are part of the wire
// format; the names are the cloud's.
type DeviceType uint8

// The device types.
const (
	DeviceEntrance DeviceType = 1 // entrance turnstile
	DeviceExit     DeviceType = 2 // exit turnstile
	DeviceDoor     DeviceType = 3 // a door (staff, classes, lockers room)
	DeviceSpa      DeviceType = 4 // wellness / spa area
	DevicePool     DeviceType = 5 // swimming pool
	DeviceLocker   DeviceType = 6 // locker
)

var deviceNames = [...]string{
	DeviceEntrance: "entrance",
	DeviceExit:     "exit",
	DeviceDoor:     "door",
	DeviceSpa:      "spa",
	DevicePool:     "pool",
	DeviceLocker:   "locker",
}

// Valid reports whether d is a known device type.
func (d DeviceType) Valid() bool { return d > 0 && int(d) < len(deviceNames) }

func (d DeviceType) String() string {
	if !d.Valid() {
		return fmt.Sprintf("device(%d)", uint8(d))
	}
	return deviceNames[d]
}

// ParseDeviceType parses a device type's name ("entrance", "spa", ...).
func ParseDeviceType(name string) (DeviceType, error) {
	for d := DeviceEntrance; d.Valid(); d++ {
		if deviceNames[d] == name {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown device type %s", quote(name))
}

// DeviceSet is a set of device types, bit d for DeviceType d. It means what
// it lists: the zero set holds no device type. The cloud's "no device types
// means all" becomes AllDevices before it reaches the wire.
type DeviceSet uint32

// AllDevices holds every device type this ProtocolVersion knows.
const AllDevices DeviceSet = 1<<DeviceEntrance | 1<<DeviceExit | 1<<DeviceDoor |
	1<<DeviceSpa | 1<<DevicePool | 1<<DeviceLocker

// DeviceSetOf returns the set of the given types.
func DeviceSetOf(types ...DeviceType) DeviceSet {
	var s DeviceSet
	for _, d := range types {
		s |= 1 << d
	}
	return s
}

// Has reports whether d is in the set.
func (s DeviceSet) Has(d DeviceType) bool { return d < 32 && s&(1<<d) != 0 }

func (s DeviceSet) validate() error {
	if s&^AllDevices != 0 {
		return fmt.Errorf("unknown device types in set %#x", uint32(s&^AllDevices))
	}
	return nil
}

// String lists the set's names joined by '|', "none" for the empty set.
func (s DeviceSet) String() string {
	if s == 0 {
		return "none"
	}
	var b strings.Builder
	for rest := s; rest != 0; rest &= rest - 1 {
		if b.Len() > 0 {
			b.WriteByte('|')
		}
		b.WriteString(DeviceType(bits.TrailingZeros32(uint32(rest))).String())
	}
	return b.String()
}

// AccessMode is what an open CRM action does at a gate of a device type it
// applies to. The values are part of the wire format.
type AccessMode uint8

// The access modes.
const (
	AccessNone         AccessMode = 0 // nothing: the edge ignores the action
	AccessMessage      AccessMode = 1 // grant and show the action's text
	AccessMessageBlock AccessMode = 2 // deny and show the action's text
)

func (m AccessMode) String() string {
	switch m {
	case AccessNone:
		return "none"
	case AccessMessage:
		return "message"
	case AccessMessageBlock:
		return "message_block"
	}
	return fmt.Sprintf("access(%d)", uint8(m))
}

// Valid reports whether m is a known access mode.
func (m AccessMode) Valid() bool { return m <= AccessMessageBlock }

// MemberRef is the cloud's opaque, non-zero reference to a member: the edge
// compares and stores it and knows nothing else about the person.
type MemberRef uint64

// Record is what an edge knows about one member: enough to decide at a gate
// and to show the member a message, and nothing that identifies the person.
// There are no names, birth dates or contact data in a record; its credentials
// are CredentialKeys, never card numbers or PINs; its texts arrive rendered
// ("Happy birthday Anna" is text the cloud wrote, not a name the edge holds).
//
// A record is replaced as a whole (see Delta): every field says the member's
// full current state.
type Record struct {
	// Member is the record's key.
	Member MemberRef `cbor:"1,keyasint"`
	// Credentials are the member's badges and PINs.
	Credentials []Credential `cbor:"2,keyasint,omitempty"`
	// Valid lists the windows in which the membership grants access. No
	// window means no access (the member still gets the record's messages);
	// a zero Window means always.
	Valid []Window `cbor:"3,keyasint,omitempty"`
	// Sites are the tenant's sites where the membership is valid; none means
	// every site of the tenant, so that a chain-wide membership does not list
	// them all.
	Sites []string `cbor:"4,keyasint,omitempty"`
	// Devices are the device types the membership opens; the zero set opens
	// none.
	Devices DeviceSet `cbor:"5,keyasint,omitempty"`
	// Suspended denies access whatever the windows say (an administrative
	// freeze), and lets the record's actions and notices still show.
	Suspended bool `cbor:"6,keyasint,omitempty"`
	// Actions are the member's open CRM actions that act at a gate.
	Actions []Action `cbor:"7,keyasint,omitempty"`
	// Notices are texts to show the member at the gate.
	Notices []Notice `cbor:"8,keyasint,omitempty"`
}

// Credential is one badge or PIN of a member.
type Credential struct {
	Key CredentialKey `cbor:"1,keyasint"`
	// Valid is when the credential itself works (a temporary badge); the
	// zero Window always.
	Valid Window `cbor:"2,keyasint,omitempty"`
}

// Action is an open CRM action of a member that acts at gates: "see
// reception before entering", "medical certificate expired".
type Action struct {
	// ID is the cloud's non-zero action id; events name it.
	ID   uint64     `cbor:"1,keyasint"`
	Mode AccessMode `cbor:"2,keyasint,omitempty"`
	// Devices are the device types it applies to; not empty unless Mode is
	// AccessNone.
	Devices DeviceSet `cbor:"3,keyasint,omitempty"`
	// Text is the rendered display text; empty shows the edge's default.
	Text string `cbor:"4,keyasint,omitempty"`
	// Priority orders the texts shown at once, actions and notices together:
	// higher first.
	Priority uint8 `cbor:"5,keyasint,omitempty"`
}

// Notice is a text to show a member at the gate in a window of time, with no
// effect on the decision: "Happy birthday Anna", "Your membership ends in 5
// days".
type Notice struct {
	Text     string `cbor:"1,keyasint"`
	Priority uint8  `cbor:"2,keyasint,omitempty"`
	Valid    Window `cbor:"3,keyasint,omitempty"`
}

// Validate checks the record on its own; Delta and Snapshot also check across
// records.
func (r *Record) Validate() error { return invalid("record", r.validate()) }

func (r *Record) validate() error {
	if r.Member == 0 {
		return fmt.Errorf("member ref 0")
	}
	if err := r.validateFields(); err != nil {
		return fmt.Errorf("member %d: %w", r.Member, err)
	}
	return nil
}

func (r *Record) validateFields() error {
	if err := maxLen("credentials", len(r.Credentials), MaxCredentials); err != nil {
		return err
	}
	for i, c := range r.Credentials {
		if c.Key.IsZero() {
			return fmt.Errorf("credentials[%d]: zero key", i)
		}
		for _, o := range r.Credentials[:i] {
			if o.Key == c.Key {
				return fmt.Errorf("credentials[%d]: key %s twice", i, c.Key)
			}
		}
		if err := c.Valid.validate(); err != nil {
			return fmt.Errorf("credentials[%d]: %w", i, err)
		}
	}
	if err := maxLen("validity windows", len(r.Valid), MaxWindows); err != nil {
		return err
	}
	for i, w := range r.Valid {
		if err := w.validate(); err != nil {
			return fmt.Errorf("valid[%d]: %w", i, err)
		}
	}
	if err := maxLen("sites", len(r.Sites), MaxSites); err != nil {
		return err
	}
	for i, s := range r.Sites {
		if err := ValidateID(s); err != nil {
			return fmt.Errorf("sites[%d]: %w", i, err)
		}
		for _, o := range r.Sites[:i] {
			if o == s {
				return fmt.Errorf("sites[%d]: %s twice", i, s)
			}
		}
	}
	if err := r.Devices.validate(); err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	if err := maxLen("actions", len(r.Actions), MaxActions); err != nil {
		return err
	}
	for i := range r.Actions {
		a := &r.Actions[i]
		if err := a.validate(); err != nil {
			return fmt.Errorf("actions[%d]: %w", i, err)
		}
		for _, o := range r.Actions[:i] {
			if o.ID == a.ID {
				return fmt.Errorf("actions[%d]: id %d twice", i, a.ID)
			}
		}
	}
	if err := maxLen("notices", len(r.Notices), MaxNotices); err != nil {
		return err
	}
	for i, n := range r.Notices {
		if n.Text == "" {
			return fmt.Errorf("notices[%d]: no text", i)
		}
		if err := checkText(n.Text); err != nil {
			return fmt.Errorf("notices[%d]: %w", i, err)
		}
		if err := n.Valid.validate(); err != nil {
			return fmt.Errorf("notices[%d]: %w", i, err)
		}
	}
	return nil
}

func (a *Action) validate() error {
	switch {
	case a.ID == 0:
		return fmt.Errorf("id 0")
	case !a.Mode.Valid():
		return fmt.Errorf("action %d: unknown access mode %d", a.ID, a.Mode)
	case a.Mode != AccessNone && a.Devices == 0:
		return fmt.Errorf("action %d: %s for no device type", a.ID, a.Mode)
	}
	if err := a.Devices.validate(); err != nil {
		return fmt.Errorf("action %d: %w", a.ID, err)
	}
	if err := checkText(a.Text); err != nil {
		return fmt.Errorf("action %d: %w", a.ID, err)
	}
	return nil
}

// checkText checks a display text: at most MaxTextLen bytes of UTF-8 with no
// control characters but line breaks, which a reader display could not show
// and a log or terminal could misread.
func checkText(s string) error {
	if len(s) > MaxTextLen {
		return fmt.Errorf("text of %d bytes, max %d", len(s), MaxTextLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("text is not UTF-8")
	}
	for i, r := range s {
		if r != '\n' && unicode.IsControl(r) {
			return fmt.Errorf("text has control character %U at byte %d", r, i)
		}
	}
	return nil
}

func maxLen(what string, n, max int) error {
	if n > max {
		return fmt.Errorf("%d %s, max %d", n, what, max)
	}
	return nil
}

// invalid wraps a validation error with ErrInvalid and what was validated.
func invalid(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w %s: %w", ErrInvalid, what, err)
}
