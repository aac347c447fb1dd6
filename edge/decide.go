// Package edge is the domain of varco-edge, the daemon on a turnstile
// controller: the decision taken when a credential is presented at a reader
// (Decide), what the reader then shows and signals (Display, LED, Beep), and
// the small interfaces of the two stores the daemon keeps on its disk: the
// decision Cache of member access records and the passage Journal. Adapters
// live in sub-packages named after their dependency: edge/badger implements
// Cache and Journal on Badger, edge/gpio and edge/osdp drive the hardware.
//
// # Decisions
//
// Decide is a pure function of a member's access record (protocol/sync
// Record, nil when no record holds the credential) and the Input: credential,
// reader (site, device type, display size), time, and the site's offline
// policy with the cache's staleness. It does not allocate, so it can run for
// every badge without garbage; its checks, in order, with the offline rule
// (vsync.OfflineRule) that governs each:
//
//	check              passes when                     else                                    offline rule
//	credential         a record holds the credential   unknown-credential
//	credential-window  the credential's own window     not-valid (not yet) / credential-expired  credential
//	membership         a Valid window holds now        not-valid                               membership
//	suspended          the record is not suspended     suspended                               suspended
//	site               Sites is empty or has the site  wrong-site
//	device             Devices has the device type     wrong-device
//	block              no open message+block action    blocked                                 block
//	                   for this device type
//
// Every check is evaluated and kept in the decision's Chain, for the log; the
// reason is the first one that fails. A grant with an open "message" action
// for the device type has reason message; actions of mode none are ignored.
//
// # Offline policy
//
// The checks that depend on what the cloud knows and the cache may not
// (an action closed at reception, a renewal paid) are governed by the site's
// vsync.OfflinePolicy once the cache is staler than a rule's limit
// (Input.Stale > OfflineLimit.After): under a fail-open rule the check no
// longer denies (outcome stale-open; a grant it made possible has reason
// stale-open, and still shows the texts, a blocking action's included), under
// a fail-closed rule a check that passed denies (outcome stale, reason stale,
// Texts.Stale on the display). A check the cache fails keeps its own reason
// under a fail-closed rule: the member is denied either way, and its own
// text says more. Without a policy, or within the limits, the cache decides
// as it is, however old; the daemon passes no staleness when it runs without
// the cloud (no [mqtt]), so a standalone edge never applies the policy.
//
// The display shows, on the reader's rows × columns (see Display): the
// denial's own text unless a blocking action explains it, then the texts of
// the blocking actions by priority, then the texts of the message actions
// and of the notices in force, together by priority (the order the protocol
// gives Action.Priority), and "Welcome" for a grant with nothing to say. All
// default texts are in Texts.
package edge

import (
	"math"
	"strings"
	"time"

	vsync "varco.dev/protocol/sync"
)

// Reader is the reader a credential was presented at, as a decision needs it.
type Reader struct {
	// ID names the reader in events.
	ID string
	// Site is the site of the edge; Device the type of the gate it guards.
	Site   string
	Device vsync.DeviceType
	// Rows and Cols are the size of its text display in characters, 0 if it
	// has none. Decisions use at most MaxRows rows.
	Rows, Cols int
}

// Input is everything Decide needs besides the record.
type Input struct {
	Credential vsync.CredentialKey
	Reader     Reader
	Now        vsync.Timestamp
	// Texts are the display texts to use; nil means DefaultTexts.
	Texts *Texts
	// Policy is the site's offline policy (nil: none) and Stale how long the
	// cache has not been in sync with the cloud: 0 while it is, Forever if
	// it never was. See the package doc.
	Policy *vsync.OfflinePolicy
	Stale  time.Duration
}

// Forever is the staleness of a cache that was never in sync with the cloud.
const Forever = time.Duration(math.MaxInt64)

// Texts are the edge's own display texts: greetings, and the explanation of
// each denial. An empty field falls back to DefaultTexts.
type Texts struct {
	Welcome           string // grant with nothing else to show; also an action of mode message without text
	Unknown           string // unknown-credential
	CredentialNotYet  string // the credential's window has not started
	CredentialExpired string // the credential's window has ended
	NoMembership      string // the record has no validity window
	MembershipNotYet  string // every window starts later
	MembershipExpired string // every window has ended
	Suspended         string
	WrongSite         string
	WrongDevice       string
	Blocked           string // a blocking action without text of its own
	Fault             string // the edge could not decide
	Stale             string // a fail-closed offline rule denied: the cache is too old
}

// DefaultTexts are the texts used when Input.Texts is nil or a field is empty.
var DefaultTexts = Texts{
	Welcome:           "Welcome",
	Unknown:           "Unknown badge",
	CredentialNotYet:  "Badge not yet valid",
	CredentialExpired: "Badge expired",
	NoMembership:      "No valid membership",
	MembershipNotYet:  "Membership not yet started",
	MembershipExpired: "Membership expired",
	Suspended:         "Membership suspended",
	WrongSite:         "Not valid at this club",
	WrongDevice:       "No access here",
	Blocked:           "Please see reception",
	Fault:             "Please try again",
	Stale:             "Offline: please see reception",
}

// textID names a field of Texts.
type textID uint8

const (
	txtWelcome textID = iota
	txtUnknown
	txtCredentialNotYet
	txtCredentialExpired
	txtNoMembership
	txtMembershipNotYet
	txtMembershipExpired
	txtSuspended
	txtWrongSite
	txtWrongDevice
	txtBlocked
	txtFault
	txtStale
)

// get returns the text id of t, or of DefaultTexts if t is nil or has none.
func (t *Texts) get(id textID) string {
	if t == nil {
		t = &DefaultTexts
	}
	var s string
	switch id {
	case txtWelcome:
		s = t.Welcome
	case txtUnknown:
		s = t.Unknown
	case txtCredentialNotYet:
		s = t.CredentialNotYet
	case txtCredentialExpired:
		s = t.CredentialExpired
	case txtNoMembership:
		s = t.NoMembership
	case txtMembershipNotYet:
		s = t.MembershipNotYet
	case txtMembershipExpired:
		s = t.MembershipExpired
	case txtSuspended:
		s = t.Suspended
	case txtWrongSite:
		s = t.WrongSite
	case txtWrongDevice:
		s = t.WrongDevice
	case txtBlocked:
		s = t.Blocked
	case txtFault:
		s = t.Fault
	case txtStale:
		s = t.Stale
	}
	if s == "" && t != &DefaultTexts {
		return DefaultTexts.get(id)
	}
	return s
}

// Check is one rule of a decision, in the order Decide evaluates them.
type Check uint8

// The checks.
const (
	CheckCredential       Check = iota // a record holds the credential
	CheckCredentialWindow              // the credential's own window holds now
	CheckMembership                    // a membership window holds now
	CheckSuspended                     // the record is not suspended
	CheckSite                          // the membership is valid at this site
	CheckDevice                        // the membership opens this device type
	CheckBlock                         // no blocking action for this device type
	numChecks
)

var checkNames = [numChecks]string{"credential", "credential-window", "membership", "suspended", "site", "device", "block"}

func (c Check) String() string {
	if c < numChecks {
		return checkNames[c]
	}
	return "check?"
}

// Outcome is the result of one Check.
type Outcome uint8

// The outcomes. NotChecked is for the checks after an unknown credential.
const (
	NotChecked Outcome = iota
	Pass
	Fail
	NotYet    // a window that starts later
	Ended     // a window that has ended
	StaleOpen // failed in the cache, passed by a fail-open offline rule
	Stale     // passed in the cache, failed by a fail-closed offline rule
)

var outcomeNames = [...]string{"-", "pass", "fail", "not-yet", "ended", "stale-open", "stale"}

// passes reports whether o lets the member through.
func (o Outcome) passes() bool { return o == Pass || o == StaleOpen }

// offlineRules are the offline rules that govern the checks; 0 for none.
var offlineRules = [numChecks]vsync.OfflineRule{
	CheckCredentialWindow: vsync.RuleCredential,
	CheckMembership:       vsync.RuleMembership,
	CheckSuspended:        vsync.RuleSuspended,
	CheckBlock:            vsync.RuleBlock,
}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "?"
}

// Chain is the outcome of every check of a decision, for the log: a fixed
// array, so that keeping it costs no allocation.
type Chain [numChecks]Outcome

// String formats the chain as "credential=pass credential-window=pass ...".
func (c Chain) String() string {
	var b strings.Builder
	for i, o := range c {
		if o == NotChecked {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(Check(i).String())
		b.WriteByte('=')
		b.WriteString(o.String())
	}
	return b.String()
}

// Color is an LED colour.
type Color uint8

// The colours.
const (
	Off Color = iota
	Red
	Green
	Amber
)

// LED is what the reader's LED does: steady when Off is zero, else blinking.
type LED struct {
	Color   Color
	On, Off time.Duration
}

// Beep is what the reader's buzzer does: Count beeps of On, Off apart.
type Beep struct {
	Count   int
	On, Off time.Duration
}

// The signals of each kind of decision.
var (
	SignalGrant   = Signals{LED{Color: Green}, Beep{Count: 1, On: 100 * time.Millisecond}}
	SignalMessage = Signals{LED{Color: Amber}, Beep{Count: 2, On: 100 * time.Millisecond, Off: 100 * time.Millisecond}}
	SignalDeny    = Signals{LED{Color: Red}, Beep{Count: 3, On: 150 * time.Millisecond, Off: 100 * time.Millisecond}}
	SignalBlocked = Signals{LED{Color: Red, On: 250 * time.Millisecond, Off: 250 * time.Millisecond},
		Beep{Count: 3, On: 150 * time.Millisecond, Off: 100 * time.Millisecond}}
	SignalFault = Signals{LED{Color: Amber, On: 250 * time.Millisecond, Off: 250 * time.Millisecond},
		Beep{Count: 1, On: 600 * time.Millisecond}}
)

// Signals are the LED and buzzer patterns of a decision.
type Signals struct {
	LED  LED
	Beep Beep
}

// Decision is the answer to a credential at a reader.
type Decision struct {
	Grant  bool
	Reason vsync.Reason
	// Member is the record's member, 0 if unknown.
	Member vsync.MemberRef
	// Action is the CRM action that blocked, or whose message a grant
	// shows (reasons blocked and message); 0 otherwise.
	Action uint64
	Chain  Chain
	// Display holds the lines to show.
	Display Display
	Signals
}

// Event returns the passage event of the decision, for the journal. Seq is
// left for the journal to assign.
func (d *Decision) Event(in Input) vsync.Event {
	ev := vsync.Event{
		Time: in.Now, Kind: vsync.EventPassage, Reader: in.Reader.ID, Credential: in.Credential,
		Member: d.Member, Decision: vsync.DecisionDeny, Reason: d.Reason, Action: d.Action,
	}
	if d.Grant {
		ev.Decision = vsync.DecisionGrant
	}
	return ev
}

// Fault is the decision when the edge cannot decide: the cache failed to
// read the record (a corrupt record, an I/O error). It denies with reason
// reader-fault and asks the member to try again.
func Fault(in Input) Decision {
	d := Decision{Reason: vsync.ReasonReaderFault, Signals: SignalFault}
	d.Display.reset(in.Reader.Rows, in.Reader.Cols)
	d.Display.add(in.Texts.get(txtFault), true)
	return d
}

// message is a text to show, with what orders it.
type message struct {
	text   string
	action uint64 // 0 for a notice or the edge's own text
	block  bool
	prio   uint8
}

// before reports whether m is shown before o: blocking actions first, then
// by priority, higher first; equal ones keep their order.
func (m *message) before(o *message) bool {
	if m.block != o.block {
		return m.block
	}
	return m.prio > o.prio
}

// Decide decides whether the member whose record is rec (nil: no record
// holds the credential) may pass in.Reader at in.Now; see the package doc
// for the rules. It does not allocate. Actions and notices beyond the
// protocol's limits (vsync.MaxActions, vsync.MaxNotices) are ignored.
func Decide(rec *vsync.Record, in Input) Decision {
	var d Decision
	d.Display.reset(in.Reader.Rows, in.Reader.Cols)
	t := in.Texts
	if rec == nil {
		d.Chain[CheckCredential] = Fail
		d.deny(vsync.ReasonUnknownCredential)
		d.Display.add(t.get(txtUnknown), true)
		return d
	}
	d.Member = rec.Member
	now, dev := in.Now, in.Reader.Device

	d.Chain[CheckCredential] = Fail
	for i := range rec.Credentials {
		if c := &rec.Credentials[i]; c.Key == in.Credential {
			d.Chain[CheckCredential] = Pass
			d.Chain[CheckCredentialWindow] = windowOutcome(c.Valid, now)
			break
		}
	}
	d.Chain[CheckMembership] = membership(rec.Valid, now)
	d.Chain[CheckSuspended] = passIf(!rec.Suspended)
	d.Chain[CheckSite] = passIf(len(rec.Sites) == 0 || hasSite(rec.Sites, in.Reader.Site))
	d.Chain[CheckDevice] = passIf(rec.Devices.Has(dev))

	// The texts, sorted as they will be shown (insertion sort: a few items).
	var buf [vsync.MaxActions + vsync.MaxNotices]message
	msgs := buf[:0]
	add := func(m message) {
		if len(msgs) == cap(msgs) {
			return
		}
		msgs = append(msgs, m)
		for i := len(msgs) - 1; i > 0 && msgs[i].before(&msgs[i-1]); i-- {
			msgs[i], msgs[i-1] = msgs[i-1], msgs[i]
		}
	}
	for i := range rec.Actions {
		a := &rec.Actions[i]
		if a.Mode == vsync.AccessNone || !a.Devices.Has(dev) || i >= vsync.MaxActions {
			continue
		}
		m := message{text: a.Text, action: a.ID, block: a.Mode == vsync.AccessMessageBlock, prio: a.Priority}
		if m.text == "" && m.block {
			m.text = t.get(txtBlocked)
		} else if m.text == "" {
			m.text = t.get(txtWelcome)
		}
		add(m)
	}
	for i := range rec.Notices {
		if n := &rec.Notices[i]; i < vsync.MaxNotices && n.Valid.Contains(now) {
			add(message{text: n.Text, prio: n.Priority})
		}
	}
	d.Chain[CheckBlock] = Pass
	if len(msgs) > 0 && msgs[0].block {
		d.Chain[CheckBlock] = Fail
	}
	staleOpen := d.Chain.applyPolicy(in.Policy, in.Stale)

	d.Grant = true
	d.Signals = SignalGrant
	for c, o := range d.Chain {
		if !o.passes() {
			d.deny(reasonOf(Check(c), o))
			break
		}
	}
	switch {
	case d.Reason == vsync.ReasonBlocked:
		d.Action = msgs[0].action
	case d.Grant && staleOpen:
		d.Reason = vsync.ReasonStaleOpen
	case d.Grant:
		for i := range msgs {
			if msgs[i].action != 0 {
				d.Reason, d.Action, d.Signals = vsync.ReasonMessage, msgs[i].action, SignalMessage
				break
			}
		}
	default:
		d.Display.add(t.get(denialText(d.Chain)), true)
	}
	last := ""
	for i := range msgs {
		if msgs[i].text == last {
			continue
		}
		if !d.Display.add(msgs[i].text, d.Display.Len() == 0) {
			break
		}
		last = msgs[i].text
	}
	if d.Grant && d.Display.Len() == 0 {
		d.Display.add(t.get(txtWelcome), true)
	}
	return d
}

// applyPolicy changes the outcomes of the checks whose offline rule's limit
// stale exceeds (see the package doc) and reports whether a fail-open rule
// passed a check that had failed.
func (c *Chain) applyPolicy(p *vsync.OfflinePolicy, stale time.Duration) (staleOpen bool) {
	if p == nil || stale <= 0 {
		return false
	}
	for i, rule := range offlineRules {
		if rule == 0 || c[i] == NotChecked {
			continue
		}
		l, ok := p.Limit(rule)
		if !ok || stale <= l.Duration() {
			continue
		}
		switch {
		case l.Mode == vsync.FailOpen && c[i] != Pass:
			c[i], staleOpen = StaleOpen, true
		case l.Mode == vsync.FailClosed && c[i] == Pass:
			c[i] = Stale
		}
	}
	return staleOpen
}

func (d *Decision) deny(r vsync.Reason) {
	d.Grant, d.Reason, d.Signals = false, r, SignalDeny
	if r == vsync.ReasonBlocked {
		d.Signals = SignalBlocked
	}
}

func passIf(ok bool) Outcome {
	if ok {
		return Pass
	}
	return Fail
}

func hasSite(sites []string, site string) bool {
	for _, s := range sites {
		if s == site {
			return true
		}
	}
	return false
}

func windowOutcome(w vsync.Window, now vsync.Timestamp) Outcome {
	switch {
	case w.Contains(now):
		return Pass
	case w.From != 0 && now < w.From:
		return NotYet
	}
	return Ended
}

// membership is the outcome of the Valid windows: Pass if one holds now,
// NotYet if one starts later, Ended if all have ended, Fail if there are none.
func membership(valid []vsync.Window, now vsync.Timestamp) Outcome {
	o := Fail
	for _, w := range valid {
		switch windowOutcome(w, now) {
		case Pass:
			return Pass
		case NotYet:
			o = NotYet
		case Ended:
			if o == Fail {
				o = Ended
			}
		}
	}
	return o
}

func reasonOf(c Check, o Outcome) vsync.Reason {
	if o == Stale {
		return vsync.ReasonStale
	}
	switch c {
	case CheckCredential:
		return vsync.ReasonUnknownCredential
	case CheckCredentialWindow:
		if o == NotYet {
			return vsync.ReasonNotValid
		}
		return vsync.ReasonCredentialExpired
	case CheckMembership:
		return vsync.ReasonNotValid
	case CheckSuspended:
		return vsync.ReasonSuspended
	case CheckSite:
		return vsync.ReasonWrongSite
	case CheckDevice:
		return vsync.ReasonWrongDevice
	}
	return vsync.ReasonBlocked
}

// denialText picks the text that explains the first failed check of c.
func denialText(c Chain) textID {
	for i, o := range c {
		if o.passes() {
			continue
		}
		if o == Stale {
			return txtStale
		}
		switch Check(i) {
		case CheckCredential:
			return txtUnknown
		case CheckCredentialWindow:
			if o == NotYet {
				return txtCredentialNotYet
			}
			return txtCredentialExpired
		case CheckMembership:
			switch o {
			case NotYet:
				return txtMembershipNotYet
			case Ended:
				return txtMembershipExpired
			}
			return txtNoMembership
		case CheckSuspended:
			return txtSuspended
		case CheckSite:
			return txtWrongSite
		case CheckDevice:
			return txtWrongDevice
		}
		break
	}
	return txtBlocked
}
