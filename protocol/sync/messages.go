package sync

import (
	"fmt"
)

// Limits of messages, checked by their Validate methods.
const (
	// MaxRecords is the most records and deletions in one Delta, and records
	// in one Snapshot chunk.
	MaxRecords = 4096
	// MaxChunks is the most chunks of one snapshot: more than a million
	// members in chunks of 1000.
	MaxChunks = 1 << 16
	// MaxEvents is the most events in one Events batch.
	MaxEvents = 1024
	// MaxReaders is the most readers of one edge.
	MaxReaders = 64
	// MaxShowSeconds is the longest a CmdShow text stays on a display.
	MaxShowSeconds = 600
	// maxSoftwareLen bounds Birth.Software.
	maxSoftwareLen = 64
)

// Kind is the kind of a message. The values are part of the wire format.
type Kind uint8

// The message kinds.
const (
	KindDelta    Kind = 1 // cloud → edges: a change of a site's state
	KindSnapshot Kind = 2 // cloud → edge: a chunk of a site's whole state
	KindCatchUp  Kind = 3 // edge → cloud: "send me what I missed"
	KindBirth    Kind = 4 // edge → cloud: the edge (re)connected
	KindStatus   Kind = 5 // edge → cloud: online / offline (last will)
	KindEvents   Kind = 6 // edge → cloud: a batch of journaled events
	KindAck      Kind = 7 // cloud → edge: events stored up to a sequence
	KindCommand  Kind = 8 // cloud → edge: do something now
)

var kindInfo = [...]struct {
	name       string
	site, edge bool // the Header must name a site, an edge
}{
	KindDelta:    {"delta", true, false},
	KindSnapshot: {"snapshot", true, true},
	KindCatchUp:  {"catchup", true, true},
	KindBirth:    {"birth", true, true},
	KindStatus:   {"status", true, true},
	KindEvents:   {"events", true, true},
	KindAck:      {"ack", false, true},
	KindCommand:  {"command", false, true},
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k > 0 && int(k) < len(kindInfo) }

func (k Kind) String() string {
	if !k.Valid() {
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
	return kindInfo[k].name
}

// Message is one of the message types of this package: *Delta, *Snapshot,
// *CatchUp, *Birth, *Status, *Events, *Ack or *Command.
type Message interface {
	// Kind is the message's kind.
	Kind() Kind
	// Validate checks the message, its Header included; the error wraps
	// ErrInvalid and says which field is wrong.
	Validate() error
	header() *Header
}

// Header is what every message has in common. It travels in the Envelope,
// not in the payload: Marshal copies it there and Unmarshal back.
type Header struct {
	// Tenant is the tenant's id; always set.
	Tenant string
	// Site is the site's id: the site whose state a Delta or Snapshot is of,
	// or the site of the edge that sends a message. Optional on Ack and
	// Command.
	Site string
	// Edge is the edge's id: the sender of an edge's message, the receiver
	// of a cloud's message to one edge. Empty on a Delta on a state topic.
	Edge string
	// Seq numbers the sender's messages, if it wants to (0: not numbered):
	// receivers do not rely on it, deltas have versions and events have
	// their own sequence. With signatures it will guard against replays.
	Seq uint64
	// Time is when the sender made the message, by its clock.
	Time Timestamp
}

func (h *Header) header() *Header { return h }

func (h *Header) validate(k Kind) error {
	if err := ValidateID(h.Tenant); err != nil {
		return fmt.Errorf("tenant: %w", err)
	}
	if err := needID("site", h.Site, kindInfo[k].site); err != nil {
		return err
	}
	if err := needID("edge", h.Edge, kindInfo[k].edge); err != nil {
		return err
	}
	if h.Time < 0 {
		return fmt.Errorf("time %d before 1970", h.Time)
	}
	return nil
}

func needID(what, id string, required bool) error {
	if id == "" && required {
		return fmt.Errorf("no %s", what)
	}
	return optionalID(what, id)
}

// Delta is a change of a site's access state from version Prev to version
// Version. The cloud publishes deltas on the site's state topic, to every
// edge of the site, and replays them on one edge's sync topic (Header.Edge
// set) when that edge catches up.
//
// A site's state is the set of the Records of its members, and its version is
// a counter that the cloud raises with every change it publishes. An edge
// keeps the version of its cache beside the cache and, for each delta (Step
// tells which case it is):
//
//   - applies it only when Prev equals its cache version: the upserts, the
//     deletions and the new cache version Version are written in one
//     transaction, all or nothing;
//   - ignores it when Version is at most its cache version: a duplicate (QoS 1
//     delivers at least once) or a delta that a catch-up already brought;
//   - otherwise there is a gap (a delta went missing while the edge was away
//     or its session expired): it applies nothing and sends a CatchUp from its
//     cache version. The cloud answers on the edge's sync topic with the
//     deltas since that version, or with a Snapshot when its change log no
//     longer reaches back that far.
//
// Within a delta:
//
//   - an upsert replaces the member's whole Record: there are no field
//     patches, a field left out is empty afterwards;
//   - a deletion removes the member's record and its credentials; deleting a
//     member the edge does not have is not an error;
//   - a member appears once at most, in Upserts or in Deletes, and a
//     credential key in one record at most;
//   - Version is greater than Prev, not necessarily by one: the cloud may
//     coalesce changes, and each upsert then holds the member's state at
//     Version. A delta with no upserts and no deletions only moves the
//     version.
type Delta struct {
	Header  `cbor:"-"`
	Version uint64      `cbor:"1,keyasint"`
	Prev    uint64      `cbor:"2,keyasint"`
	Upserts []Record    `cbor:"3,keyasint,omitempty"`
	Deletes []MemberRef `cbor:"4,keyasint,omitempty"`
	// Policy, when set, replaces the site's offline policy at Version; nil
	// leaves it as it was.
	Policy *OfflinePolicy `cbor:"5,keyasint,omitempty"`
}

// Kind returns KindDelta.
func (*Delta) Kind() Kind { return KindDelta }

// Validate checks the header, Version > Prev, the records, and that no member
// and no credential key appears twice.
func (d *Delta) Validate() error { return invalid("delta", d.validate()) }

func (d *Delta) validate() error {
	if err := d.Header.validate(KindDelta); err != nil {
		return err
	}
	if d.Version <= d.Prev {
		return fmt.Errorf("version %d is not after prev %d", d.Version, d.Prev)
	}
	if err := maxLen("upserts and deletes", len(d.Upserts)+len(d.Deletes), MaxRecords); err != nil {
		return err
	}
	if err := d.Policy.validate(); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	seen, err := validateRecords(d.Upserts, "upserts")
	if err != nil {
		return err
	}
	for i, m := range d.Deletes {
		if m == 0 {
			return fmt.Errorf("deletes[%d]: member ref 0", i)
		}
		if _, dup := seen[m]; dup {
			return fmt.Errorf("deletes[%d]: member %d twice", i, m)
		}
		seen[m] = struct{}{}
	}
	return nil
}

// validateRecords validates records and checks that no member and no
// credential key appears twice; it returns the set of members.
func validateRecords(records []Record, what string) (map[MemberRef]struct{}, error) {
	members := make(map[MemberRef]struct{}, len(records))
	var keys map[CredentialKey]MemberRef
	for i := range records {
		r := &records[i]
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", what, i, err)
		}
		if _, dup := members[r.Member]; dup {
			return nil, fmt.Errorf("%s[%d]: member %d twice", what, i, r.Member)
		}
		members[r.Member] = struct{}{}
		if keys == nil {
			keys = make(map[CredentialKey]MemberRef, 2*len(records))
		}
		for _, c := range r.Credentials {
			if other, dup := keys[c.Key]; dup {
				return nil, fmt.Errorf("%s[%d]: credential %s of member %d is also member %d's", what, i, c.Key, r.Member, other)
			}
			keys[c.Key] = r.Member
		}
	}
	return members, nil
}

// Step is what an edge does with a Delta, given its cache version.
type Step uint8

// The steps, see Delta.
const (
	StepApply   Step = 1 // Prev is the cache version: apply, the cache version becomes Version
	StepSkip    Step = 2 // Version is at most the cache version: already applied, ignore
	StepCatchUp Step = 3 // a gap: apply nothing, send a CatchUp from the cache version
)

func (s Step) String() string {
	switch s {
	case StepApply:
		return "apply"
	case StepSkip:
		return "skip"
	case StepCatchUp:
		return "catch-up"
	}
	return fmt.Sprintf("step(%d)", uint8(s))
}

// Step tells what an edge whose cache is at version cache does with d.
func (d *Delta) Step(cache uint64) Step {
	switch {
	case d.Version <= cache:
		return StepSkip
	case d.Prev == cache:
		return StepApply
	}
	return StepCatchUp
}

// Snapshot is one chunk of a site's whole state at a version, sent to one
// edge on its sync topic in answer to a CatchUp. The edge gathers the chunks
// of one snapshot ID, in any order and ignoring duplicates; when it has all
// Chunks of them it replaces its whole cache with their records and sets its
// cache version to Version, in one transaction. Chunks of a newer snapshot ID
// make it drop an unfinished older one. Deltas that arrive meanwhile are
// judged by Delta.Step against the version the cache has then.
type Snapshot struct {
	Header `cbor:"-"`
	// ID is the cloud's id of this snapshot, the same in each of its chunks.
	ID uint64 `cbor:"1,keyasint"`
	// Version is the site version that the snapshot is the state of.
	Version uint64 `cbor:"2,keyasint"`
	// Chunk is this chunk's index, from 0 to Chunks-1.
	Chunk uint32 `cbor:"3,keyasint"`
	// Chunks is the number of chunks, at least 1.
	Chunks  uint32   `cbor:"4,keyasint"`
	Records []Record `cbor:"5,keyasint,omitempty"`
	// Policy is the site's offline policy at Version, carried by chunk 0
	// only; nil there means the site has none.
	Policy *OfflinePolicy `cbor:"6,keyasint,omitempty"`
}

// Kind returns KindSnapshot.
func (*Snapshot) Kind() Kind { return KindSnapshot }

// Validate checks the header, the chunk numbering and the records.
func (s *Snapshot) Validate() error { return invalid("snapshot", s.validate()) }

func (s *Snapshot) validate() error {
	if err := s.Header.validate(KindSnapshot); err != nil {
		return err
	}
	switch {
	case s.ID == 0:
		return fmt.Errorf("id 0")
	case s.Chunks == 0 || s.Chunks > MaxChunks:
		return fmt.Errorf("%d chunks, want 1 to %d", s.Chunks, MaxChunks)
	case s.Chunk >= s.Chunks:
		return fmt.Errorf("chunk %d of %d", s.Chunk, s.Chunks)
	case s.Policy != nil && s.Chunk != 0:
		return fmt.Errorf("policy in chunk %d: only chunk 0 carries it", s.Chunk)
	}
	if err := s.Policy.validate(); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	if err := maxLen("records", len(s.Records), MaxRecords); err != nil {
		return err
	}
	_, err := validateRecords(s.Records, "records")
	return err
}

// CatchUp asks the cloud for the changes of the edge's site since version
// From, the edge's cache version: after a gap, at start-up, or after a
// CmdResync. The cloud answers on the edge's sync topic with deltas from
// From (the first one with Prev == From) or with a Snapshot. From 0 means an
// empty cache.
type CatchUp struct {
	Header `cbor:"-"`
	From   uint64 `cbor:"1,keyasint"`
	// Full asks for a Snapshot even when deltas would do: the edge doubts its
	// cache (it was restored from a backup, or failed a check).
	Full bool `cbor:"2,keyasint,omitempty"`
}

// Kind returns KindCatchUp.
func (*CatchUp) Kind() Kind { return KindCatchUp }

// Validate checks the header.
func (c *CatchUp) Validate() error { return invalid("catchup", c.Header.validate(KindCatchUp)) }

// BootID identifies one run of an edge daemon: a random non-zero number it
// draws at start. A change of BootID tells the cloud the edge restarted.
type BootID uint64

// Birth is what an edge publishes each time it connects, before anything
// else: who it is, which run, what its cache and journal hold and which
// readers it has. The cloud answers with what the edge lacks: deltas or a
// snapshot if CacheVersion is behind, an Ack of what it already stored. The
// edge's ProtocolVersion is its envelope's Version (UnmarshalEnvelope).
type Birth struct {
	Header `cbor:"-"`
	Boot   BootID `cbor:"1,keyasint"`
	// CacheVersion is the site version the edge's cache is at.
	CacheVersion uint64 `cbor:"2,keyasint"`
	// Software is the edge's software version (protocol.Version).
	Software string `cbor:"3,keyasint"`
	// LastSeq is the last event sequence in the edge's journal, 0 if it never
	// journaled one. Lower than what the cloud acknowledged means the journal
	// was lost (a new disk): the edge numbers from 1 again.
	LastSeq uint64   `cbor:"4,keyasint,omitempty"`
	Readers []Reader `cbor:"5,keyasint,omitempty"`
}

// Reader is one reader of an edge.
type Reader struct {
	// ID is the reader's id, unique on the edge, as events and commands name it.
	ID     string     `cbor:"1,keyasint"`
	Device DeviceType `cbor:"2,keyasint"`
	Online bool       `cbor:"3,keyasint,omitempty"`
	// Rows and Cols are the size of the reader's text display, in
	// characters; 0 if it has none or did not say.
	Rows uint8 `cbor:"4,keyasint,omitempty"`
	Cols uint8 `cbor:"5,keyasint,omitempty"`
}

// Kind returns KindBirth.
func (*Birth) Kind() Kind { return KindBirth }

// Validate checks the header, the boot id, the software version and the
// readers.
func (b *Birth) Validate() error { return invalid("birth", b.validate()) }

func (b *Birth) validate() error {
	if err := b.Header.validate(KindBirth); err != nil {
		return err
	}
	if b.Boot == 0 {
		return fmt.Errorf("boot id 0")
	}
	if b.Software == "" || len(b.Software) > maxSoftwareLen {
		return fmt.Errorf("software version of %d bytes, want 1 to %d", len(b.Software), maxSoftwareLen)
	}
	for i := 0; i < len(b.Software); i++ {
		if c := b.Software[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("software version %s: byte %q at %d", quote(b.Software), c, i)
		}
	}
	if err := maxLen("readers", len(b.Readers), MaxReaders); err != nil {
		return err
	}
	for i, r := range b.Readers {
		if err := ValidateID(r.ID); err != nil {
			return fmt.Errorf("readers[%d]: %w", i, err)
		}
		if !r.Device.Valid() {
			return fmt.Errorf("readers[%d] %s: unknown device type %d", i, r.ID, r.Device)
		}
		for _, o := range b.Readers[:i] {
			if o.ID == r.ID {
				return fmt.Errorf("readers[%d]: %s twice", i, r.ID)
			}
		}
	}
	return nil
}

// Status is an edge's retained online status. The edge registers an offline
// Status as its MQTT last will when it connects (its Time is then the
// connection's, not the moment the broker publishes it) and publishes an
// online Status after its Birth. The cloud keeps, per edge, the Status with
// the latest Time, so a late will of an older connection does not hide a
// newer online status.
type Status struct {
	Header       `cbor:"-"`
	Online       bool   `cbor:"1,keyasint,omitempty"`
	Boot         BootID `cbor:"2,keyasint"`
	CacheVersion uint64 `cbor:"3,keyasint,omitempty"`
}

// Kind returns KindStatus.
func (*Status) Kind() Kind { return KindStatus }

// Validate checks the header and the boot id.
func (s *Status) Validate() error {
	err := s.Header.validate(KindStatus)
	if err == nil && s.Boot == 0 {
		err = fmt.Errorf("boot id 0")
	}
	return invalid("status", err)
}

// EventKind is what an Event records. The values are part of the wire format.
type EventKind uint8

// The event kinds.
const (
	EventPassage       EventKind = 1 // a credential at a reader, and the decision
	EventReaderOffline EventKind = 2 // the reader stopped answering
	EventReaderOnline  EventKind = 3 // the reader answers again
	EventDoorForced    EventKind = 4 // the door or gate opened without a grant
	EventDoorHeld      EventKind = 5 // the door or gate stayed open too long
	EventRemoteOpen    EventKind = 6 // opened by a CmdOpen command
	EventCommandDone   EventKind = 7 // a CmdShow or CmdResync carried out (Reader empty for a resync)
)

var eventNames = [...]string{
	EventPassage:       "passage",
	EventReaderOffline: "reader-offline",
	EventReaderOnline:  "reader-online",
	EventDoorForced:    "door-forced",
	EventDoorHeld:      "door-held",
	EventRemoteOpen:    "remote-open",
	EventCommandDone:   "command-done",
}

// Valid reports whether k is a known event kind.
func (k EventKind) Valid() bool { return k > 0 && int(k) < len(eventNames) }

func (k EventKind) String() string {
	if !k.Valid() {
		return fmt.Sprintf("event(%d)", uint8(k))
	}
	return eventNames[k]
}

// Decision is the outcome of a passage.
type Decision uint8

// The decisions. DecisionNone is for events that are not passages.
const (
	DecisionNone  Decision = 0
	DecisionGrant Decision = 1
	DecisionDeny  Decision = 2
)

func (d Decision) String() string {
	switch d {
	case DecisionNone:
		return "none"
	case DecisionGrant:
		return "grant"
	case DecisionDeny:
		return "deny"
	}
	return fmt.Sprintf("decision(%d)", uint8(d))
}

// Reason says why a passage was decided so. The values are part of the wire
// format.
type Reason uint8

// The reasons. A grant has ReasonNone, ReasonMessage or ReasonStaleOpen, a
// denial one of the others.
const (
	ReasonNone              Reason = 0  // granted, nothing to say; or not a passage
	ReasonMessage           Reason = 1  // granted with an action's message (Event.Action)
	ReasonUnknownCredential Reason = 2  // no record has the credential
	ReasonCredentialExpired Reason = 3  // the credential is outside its window
	ReasonNotValid          Reason = 4  // no membership window holds the time
	ReasonSuspended         Reason = 5  // the record is suspended
	ReasonBlocked           Reason = 6  // a message-and-block action (Event.Action)
	ReasonWrongSite         Reason = 7  // the membership is not valid at this site
	ReasonWrongDevice       Reason = 8  // the membership does not open this device type
	ReasonReaderFault       Reason = 9  // the edge could not decide (unreadable card, internal error)
	ReasonStale             Reason = 10 // a fail-closed offline rule denied: the cache is older than its limit
	ReasonStaleOpen         Reason = 11 // granted by a fail-open offline rule: the cache is older than its limit
	maxReason               Reason = 12 // first unknown
)

var reasonNames = [...]string{
	ReasonNone:              "none",
	ReasonMessage:           "message",
	ReasonUnknownCredential: "unknown-credential",
	ReasonCredentialExpired: "credential-expired",
	ReasonNotValid:          "not-valid",
	ReasonSuspended:         "suspended",
	ReasonBlocked:           "blocked",
	ReasonWrongSite:         "wrong-site",
	ReasonWrongDevice:       "wrong-device",
	ReasonReaderFault:       "reader-fault",
	ReasonStale:             "stale",
	ReasonStaleOpen:         "stale-open",
}

// grants reports whether r is a reason of a grant.
func (r Reason) grants() bool { return r == ReasonNone || r == ReasonMessage || r == ReasonStaleOpen }

// Valid reports whether r is a known reason.
func (r Reason) Valid() bool { return r < maxReason }

func (r Reason) String() string {
	if !r.Valid() {
		return fmt.Sprintf("reason(%d)", uint8(r))
	}
	return reasonNames[r]
}

// Events is a batch of an edge's journaled events, in journal order, with
// gap-free sequence numbers. The edge sends the unacknowledged part of its
// journal, oldest first, and deletes events only after an Ack covers them;
// so the cloud may get an event more than once and stores each (edge, Seq)
// once.
type Events struct {
	Header `cbor:"-"`
	Boot   BootID  `cbor:"1,keyasint"`
	Events []Event `cbor:"2,keyasint"`
}

// Event is one journaled event.
type Event struct {
	// Seq is the event's journal sequence: it starts at 1 and grows by one
	// with every event the edge journals, across restarts, for the life of
	// its journal (see Birth.LastSeq).
	Seq  uint64    `cbor:"1,keyasint"`
	Time Timestamp `cbor:"2,keyasint"`
	Kind EventKind `cbor:"3,keyasint"`
	// Reader is the id of the reader (or its gate) the event happened at.
	Reader string `cbor:"4,keyasint"`
	// Credential is the key presented, for a passage.
	Credential CredentialKey `cbor:"5,keyasint,omitzero"`
	// Member is the record the credential belongs to, if the edge knows it.
	Member   MemberRef `cbor:"6,keyasint,omitempty"`
	Decision Decision  `cbor:"7,keyasint,omitempty"`
	Reason   Reason    `cbor:"8,keyasint,omitempty"`
	// Action is the CRM action whose message was shown or that blocked.
	Action uint64 `cbor:"9,keyasint,omitempty"`
	// Command is the id of the command an EventRemoteOpen or
	// EventCommandDone carried out: the edge's acknowledgement of it.
	Command uint64 `cbor:"10,keyasint,omitempty"`
}

// Kind returns KindEvents.
func (*Events) Kind() Kind { return KindEvents }

// Validate checks the header, that the batch is not empty and its sequence
// numbers follow each other, and each event.
func (e *Events) Validate() error { return invalid("events", e.validate()) }

func (e *Events) validate() error {
	if err := e.Header.validate(KindEvents); err != nil {
		return err
	}
	if e.Boot == 0 {
		return fmt.Errorf("boot id 0")
	}
	if len(e.Events) == 0 {
		return fmt.Errorf("no events")
	}
	if err := maxLen("events", len(e.Events), MaxEvents); err != nil {
		return err
	}
	for i := range e.Events {
		ev := &e.Events[i]
		if i > 0 && ev.Seq != e.Events[i-1].Seq+1 {
			return fmt.Errorf("events[%d]: seq %d after %d: a batch has no gaps", i, ev.Seq, e.Events[i-1].Seq)
		}
		if err := ev.validate(); err != nil {
			return fmt.Errorf("events[%d] (seq %d): %w", i, ev.Seq, err)
		}
	}
	return nil
}

func (ev *Event) validate() error {
	switch {
	case ev.Seq == 0:
		return fmt.Errorf("seq 0")
	case ev.Time < 0:
		return fmt.Errorf("time %d before 1970", ev.Time)
	case !ev.Kind.Valid():
		return fmt.Errorf("unknown kind %d", ev.Kind)
	case !ev.Reason.Valid():
		return fmt.Errorf("unknown reason %d", ev.Reason)
	}
	if err := needID("reader", ev.Reader, ev.Kind != EventCommandDone); err != nil {
		return err
	}
	if ev.Kind != EventPassage {
		if ev.Decision != DecisionNone || ev.Reason != ReasonNone || !ev.Credential.IsZero() || ev.Member != 0 || ev.Action != 0 {
			return fmt.Errorf("%s with passage fields", ev.Kind)
		}
		if (ev.Kind == EventRemoteOpen || ev.Kind == EventCommandDone) != (ev.Command != 0) {
			return fmt.Errorf("%s with command %d", ev.Kind, ev.Command)
		}
		return nil
	}
	switch {
	case ev.Command != 0:
		return fmt.Errorf("passage with command %d", ev.Command)
	case ev.Decision == DecisionGrant && !ev.Reason.grants():
		return fmt.Errorf("grant with reason %s", ev.Reason)
	case ev.Decision == DecisionDeny && ev.Reason.grants():
		return fmt.Errorf("deny with reason %s", ev.Reason)
	case ev.Decision != DecisionGrant && ev.Decision != DecisionDeny:
		return fmt.Errorf("passage with decision %s", ev.Decision)
	case (ev.Reason == ReasonMessage || ev.Reason == ReasonBlocked) != (ev.Action != 0):
		return fmt.Errorf("reason %s with action %d", ev.Reason, ev.Action)
	case ev.Credential.IsZero() && ev.Reason != ReasonReaderFault:
		return fmt.Errorf("passage without credential")
	}
	return nil
}

// Ack tells an edge that the cloud has stored every event of its journal up
// to and including Seq, so the edge may delete them. Boot echoes the batch's,
// for the edge's logs; the high-water mark holds across runs. Acks never go
// backwards: an edge ignores one below what it already had.
type Ack struct {
	Header `cbor:"-"`
	Boot   BootID `cbor:"1,keyasint"`
	Seq    uint64 `cbor:"2,keyasint"`
}

// Kind returns KindAck.
func (*Ack) Kind() Kind { return KindAck }

// Validate checks the header and that Seq is not 0.
func (a *Ack) Validate() error {
	err := a.Header.validate(KindAck)
	if err == nil && a.Seq == 0 {
		err = fmt.Errorf("seq 0")
	}
	return invalid("ack", err)
}

// CommandOp is what a Command asks. The values are part of the wire format.
type CommandOp uint8

// The command operations.
const (
	CmdOpen   CommandOp = 1 // open the gate of Reader once
	CmdResync CommandOp = 2 // send a CatchUp with Full set
	CmdShow   CommandOp = 3 // show Text on Reader's display for Seconds
)

func (op CommandOp) String() string {
	switch op {
	case CmdOpen:
		return "open"
	case CmdResync:
		return "resync"
	case CmdShow:
		return "show"
	}
	return fmt.Sprintf("op(%d)", uint8(op))
}

// Command asks one edge to do something now. The edge carries out a command
// ID once (QoS 1 may deliver it twice) and drops it if it arrives after
// Expires: a gate must not open because a command sat in a broker queue
// while the edge was offline.
type Command struct {
	Header `cbor:"-"`
	// ID is the cloud's non-zero command id; the EventRemoteOpen or
	// EventCommandDone that acknowledges it names it.
	ID uint64    `cbor:"1,keyasint"`
	Op CommandOp `cbor:"2,keyasint"`
	// Reader is the reader to act on, for CmdOpen and CmdShow.
	Reader string `cbor:"3,keyasint,omitempty"`
	// Text and Seconds are for CmdShow.
	Text    string `cbor:"4,keyasint,omitempty"`
	Seconds uint16 `cbor:"5,keyasint,omitempty"`
	// Expires is when the command goes stale; required.
	Expires Timestamp `cbor:"6,keyasint"`
}

// Kind returns KindCommand.
func (*Command) Kind() Kind { return KindCommand }

// Validate checks the header, and the fields each operation needs and only
// those.
func (c *Command) Validate() error { return invalid("command", c.validate()) }

func (c *Command) validate() error {
	if err := c.Header.validate(KindCommand); err != nil {
		return err
	}
	switch {
	case c.ID == 0:
		return fmt.Errorf("id 0")
	case c.Expires <= 0:
		return fmt.Errorf("no expiry")
	case c.Header.Time != 0 && c.Expires <= c.Header.Time:
		return fmt.Errorf("expires (%s) at or before it was made (%s)", c.Expires, c.Header.Time)
	}
	switch c.Op {
	case CmdOpen, CmdShow:
		if err := ValidateID(c.Reader); err != nil {
			return fmt.Errorf("%s: reader: %w", c.Op, err)
		}
	case CmdResync:
		if c.Reader != "" {
			return fmt.Errorf("%s with a reader", c.Op)
		}
	default:
		return fmt.Errorf("unknown op %d", c.Op)
	}
	if c.Op != CmdShow {
		if c.Text != "" || c.Seconds != 0 {
			return fmt.Errorf("%s with text", c.Op)
		}
		return nil
	}
	if c.Text == "" {
		return fmt.Errorf("show without text")
	}
	if c.Seconds == 0 || c.Seconds > MaxShowSeconds {
		return fmt.Errorf("show for %d seconds, want 1 to %d", c.Seconds, MaxShowSeconds)
	}
	return checkText(c.Text)
}
