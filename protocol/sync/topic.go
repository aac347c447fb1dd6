package sync

import (
	"fmt"
	"strings"
)

// MaxIDLen is the longest tenant, site, edge, reader or key id.
const MaxIDLen = 64

// ValidateID checks a tenant, site, edge, reader or key id: 1 to MaxIDLen
// characters of a-z, 0-9 and '-', starting with a letter or a digit. The
// charset keeps ids safe in MQTT topics and broker ACLs (no '/', '+', '#',
// NUL, '$' or space), in file names, log lines and URLs, and free of case
// confusion. The cloud's tenant slugs and numeric site ids fit it. The error
// wraps ErrID.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrID)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w %s: %d bytes, max %d", ErrID, quote(id), len(id), MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-' && i > 0:
		default:
			return fmt.Errorf("%w %s: byte %q at %d; want a-z, 0-9 or '-' (not first)", ErrID, quote(id), c, i)
		}
	}
	return nil
}

// optionalID validates id unless it is empty.
func optionalID(what, id string) error {
	if id == "" {
		return nil
	}
	if err := ValidateID(id); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// quote quotes untrusted text for an error message, cut to a readable length.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// TopicPrefix starts every topic. Its "v1" changes only if a message ever has
// to change in a way that old receivers would misread; ordinary evolution
// goes through ProtocolVersion on the same topics.
const TopicPrefix = "varco/v1"

// TopicKind is one of the topics of the layout, the table in the package
// doc: what it carries (Carries), who publishes on it (Publisher), with which
// QoS and retain flag (QoS, Retained).
type TopicKind uint8

// The topics.
const (
	TopicState   TopicKind = 1 // cloud → every edge of a site: deltas
	TopicSync    TopicKind = 2 // cloud → one edge: catch-up deltas and snapshot chunks
	TopicCatchUp TopicKind = 3 // edge → cloud: catch-up requests
	TopicEvents  TopicKind = 4 // edge → cloud: event batches
	TopicAck     TopicKind = 5 // cloud → edge: event acknowledgements
	TopicBirth   TopicKind = 6 // edge → cloud: sent on every connect
	TopicStatus  TopicKind = 7 // edge → cloud: retained online status; offline as last will
	TopicCommand TopicKind = 8 // cloud → edge: commands
)

// Side is who publishes on a topic.
type Side uint8

// The two sides.
const (
	SideCloud Side = 1
	SideEdge  Side = 2
)

func (s Side) String() string {
	switch s {
	case SideCloud:
		return "cloud"
	case SideEdge:
		return "edge"
	}
	return fmt.Sprintf("side(%d)", uint8(s))
}

var topicKinds = [...]struct {
	name      string // last segment
	site      bool   // under site/{site} rather than edge/{edge}
	publisher Side
	retained  bool
	kinds     []Kind // message kinds it carries
}{
	TopicState:   {"state", true, SideCloud, false, []Kind{KindDelta}},
	TopicSync:    {"sync", false, SideCloud, false, []Kind{KindDelta, KindSnapshot}},
	TopicCatchUp: {"catchup", false, SideEdge, false, []Kind{KindCatchUp}},
	TopicEvents:  {"events", false, SideEdge, false, []Kind{KindEvents}},
	TopicAck:     {"ack", false, SideCloud, false, []Kind{KindAck}},
	TopicBirth:   {"birth", false, SideEdge, false, []Kind{KindBirth}},
	TopicStatus:  {"status", false, SideEdge, true, []Kind{KindStatus}},
	TopicCommand: {"cmd", false, SideCloud, false, []Kind{KindCommand}},
}

// Valid reports whether k is a topic of the layout.
func (k TopicKind) Valid() bool { return k > 0 && int(k) < len(topicKinds) }

func (k TopicKind) String() string {
	if !k.Valid() {
		return fmt.Sprintf("topic(%d)", uint8(k))
	}
	return topicKinds[k].name
}

// Publisher is the side that publishes on topics of kind k; the other side
// subscribes. The broker ACL grants exactly that.
func (k TopicKind) Publisher() Side {
	if !k.Valid() {
		return 0
	}
	return topicKinds[k].publisher
}

// PerSite reports whether topics of kind k are per site
// (varco/v1/{tenant}/site/{site}/…, read by every edge of the site) rather
// than per edge (varco/v1/{tenant}/edge/{edge}/…).
func (k TopicKind) PerSite() bool { return k.Valid() && topicKinds[k].site }

// QoS is the MQTT QoS to publish and subscribe with: 1 for every topic.
// Receivers are idempotent (delta versions, event sequences, command ids), so
// at-least-once delivery is enough and QoS 2's extra round trip is not needed.
func (k TopicKind) QoS() byte { return 1 }

// Retained reports whether messages on topics of kind k are published with
// the retain flag: only the status, so that a console or a restarted cloud
// sees every edge's last known status at once.
func (k TopicKind) Retained() bool { return k.Valid() && topicKinds[k].retained }

// Carries reports whether a message of kind m belongs on topics of kind k.
func (k TopicKind) Carries(m Kind) bool {
	if !k.Valid() {
		return false
	}
	for _, c := range topicKinds[k].kinds {
		if c == m {
			return true
		}
	}
	return false
}

// Filter is the MQTT subscription filter for topics of kind k of every
// tenant, for the cloud: "varco/v1/+/edge/+/events" and so on. Behind a
// shared subscription ("$share/{group}/" + filter) several cloud replicas
// split the load.
func (k TopicKind) Filter() string {
	return Topic{Kind: k, Tenant: "+", Site: "+", Edge: "+"}.String()
}

// Topic is a parsed topic: its kind, its tenant and either its site (for
// TopicState) or its edge (every other kind).
type Topic struct {
	Kind   TopicKind
	Tenant string
	Site   string // TopicState only
	Edge   string // every other kind
}

// String formats the topic without validating it; Name validates.
func (t Topic) String() string {
	if !t.Kind.Valid() {
		return fmt.Sprintf("%s/%s/%s", TopicPrefix, t.Tenant, t.Kind)
	}
	if topicKinds[t.Kind].site {
		return TopicPrefix + "/" + t.Tenant + "/site/" + t.Site + "/" + topicKinds[t.Kind].name
	}
	return TopicPrefix + "/" + t.Tenant + "/edge/" + t.Edge + "/" + topicKinds[t.Kind].name
}

// Validate checks the kind and the ids that the kind needs; the id its kind
// does not use must be empty.
func (t Topic) Validate() error {
	if !t.Kind.Valid() {
		return fmt.Errorf("%w: unknown kind %d", ErrTopic, t.Kind)
	}
	if err := ValidateID(t.Tenant); err != nil {
		return fmt.Errorf("%w %s: tenant: %w", ErrTopic, t.Kind, err)
	}
	id, unused, what := t.Edge, t.Site, "edge"
	if topicKinds[t.Kind].site {
		id, unused, what = t.Site, t.Edge, "site"
	}
	if err := ValidateID(id); err != nil {
		return fmt.Errorf("%w %s: %s: %w", ErrTopic, t.Kind, what, err)
	}
	if unused != "" {
		return fmt.Errorf("%w %s: has both a site and an edge", ErrTopic, t.Kind)
	}
	return nil
}

// Name validates the topic and returns its name.
func (t Topic) Name() (string, error) {
	if err := t.Validate(); err != nil {
		return "", err
	}
	return t.String(), nil
}

// StateTopic is varco/v1/{tenant}/site/{site}/state.
func StateTopic(tenant, site string) (string, error) {
	return Topic{Kind: TopicState, Tenant: tenant, Site: site}.Name()
}

// SyncTopic is varco/v1/{tenant}/edge/{edge}/sync.
func SyncTopic(tenant, edge string) (string, error) { return edgeTopic(TopicSync, tenant, edge) }

// CatchUpTopic is varco/v1/{tenant}/edge/{edge}/catchup.
func CatchUpTopic(tenant, edge string) (string, error) {
	return edgeTopic(TopicCatchUp, tenant, edge)
}

// EventsTopic is varco/v1/{tenant}/edge/{edge}/events.
func EventsTopic(tenant, edge string) (string, error) { return edgeTopic(TopicEvents, tenant, edge) }

// AckTopic is varco/v1/{tenant}/edge/{edge}/ack.
func AckTopic(tenant, edge string) (string, error) { return edgeTopic(TopicAck, tenant, edge) }

// BirthTopic is varco/v1/{tenant}/edge/{edge}/birth.
func BirthTopic(tenant, edge string) (string, error) { return edgeTopic(TopicBirth, tenant, edge) }

// StatusTopic is varco/v1/{tenant}/edge/{edge}/status.
func StatusTopic(tenant, edge string) (string, error) { return edgeTopic(TopicStatus, tenant, edge) }

// CommandTopic is varco/v1/{tenant}/edge/{edge}/cmd.
func CommandTopic(tenant, edge string) (string, error) {
	return edgeTopic(TopicCommand, tenant, edge)
}

func edgeTopic(k TopicKind, tenant, edge string) (string, error) {
	return Topic{Kind: k, Tenant: tenant, Edge: edge}.Name()
}

// maxTopicLen bounds the input of ParseTopic: the longest valid topic.
const maxTopicLen = len(TopicPrefix) + len("//site//catchup") + 2*MaxIDLen

// ParseTopic parses a topic name of the layout and rejects anything else:
// another prefix, a wrong number of levels, an unknown kind, an id outside the
// id charset (wildcards included). Strip a shared-subscription prefix first.
// The errors wrap ErrTopic.
func ParseTopic(name string) (Topic, error) {
	if len(name) > maxTopicLen {
		return Topic{}, fmt.Errorf("%w: %d bytes, max %d", ErrTopic, len(name), maxTopicLen)
	}
	rest, ok := strings.CutPrefix(name, TopicPrefix+"/")
	if !ok {
		return Topic{}, fmt.Errorf("%w %s: not under %s/", ErrTopic, quote(name), TopicPrefix)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 {
		return Topic{}, fmt.Errorf("%w %s: want %s/{tenant}/site|edge/{id}/{kind}", ErrTopic, quote(name), TopicPrefix)
	}
	t := Topic{Tenant: parts[0]}
	scope, id, last := parts[1], parts[2], parts[3]
	for k := TopicState; k.Valid(); k++ {
		if topicKinds[k].name == last && (scope == "site") == topicKinds[k].site && (scope == "site" || scope == "edge") {
			t.Kind = k
			break
		}
	}
	if t.Kind == 0 {
		return Topic{}, fmt.Errorf("%w %s: unknown topic %s/…/%s", ErrTopic, quote(name), quote(scope), quote(last))
	}
	if scope == "site" {
		t.Site = id
	} else {
		t.Edge = id
	}
	if err := t.Validate(); err != nil {
		return Topic{}, fmt.Errorf("%w (in %s)", err, quote(name))
	}
	return t, nil
}

// TopicFor is the topic msg is published on: a Delta without an Edge goes to
// its site's state topic, a Delta with an Edge (a catch-up reply) and a
// Snapshot to that edge's sync topic, every other kind to its own topic of
// the message's edge.
func TopicFor(msg Message) (Topic, error) {
	h := msg.header()
	var t Topic
	switch msg.Kind() {
	case KindDelta:
		if h.Edge == "" {
			t = Topic{Kind: TopicState, Tenant: h.Tenant, Site: h.Site}
		} else {
			t = Topic{Kind: TopicSync, Tenant: h.Tenant, Edge: h.Edge}
		}
	case KindSnapshot:
		t = Topic{Kind: TopicSync, Tenant: h.Tenant, Edge: h.Edge}
	case KindCatchUp:
		t = Topic{Kind: TopicCatchUp, Tenant: h.Tenant, Edge: h.Edge}
	case KindEvents:
		t = Topic{Kind: TopicEvents, Tenant: h.Tenant, Edge: h.Edge}
	case KindAck:
		t = Topic{Kind: TopicAck, Tenant: h.Tenant, Edge: h.Edge}
	case KindBirth:
		t = Topic{Kind: TopicBirth, Tenant: h.Tenant, Edge: h.Edge}
	case KindStatus:
		t = Topic{Kind: TopicStatus, Tenant: h.Tenant, Edge: h.Edge}
	case KindCommand:
		t = Topic{Kind: TopicCommand, Tenant: h.Tenant, Edge: h.Edge}
	default:
		return Topic{}, fmt.Errorf("%w: no topic for %s", ErrTopic, msg.Kind())
	}
	return t, t.Validate()
}

// Check reports whether msg may arrive on topic t: the topic carries its kind,
// and its tenant and its site or edge are the message's own. The cloud calls
// it on every message it ingests, so that an edge can speak only for itself
// even if the broker's ACL were wrong; an edge calls it on what it receives,
// and also checks that a message's Site is its own (a sync topic names no
// site). The error wraps ErrTopic.
func (t Topic) Check(msg Message) error {
	if err := t.Validate(); err != nil {
		return err
	}
	h := msg.header()
	switch {
	case !t.Kind.Carries(msg.Kind()):
		return fmt.Errorf("%w %s: a %s does not belong on it", ErrTopic, t, msg.Kind())
	case h.Tenant != t.Tenant:
		return fmt.Errorf("%w %s: message of tenant %s", ErrTopic, t, quote(h.Tenant))
	case t.Kind == TopicState && h.Site != t.Site:
		return fmt.Errorf("%w %s: message of site %s", ErrTopic, t, quote(h.Site))
	case t.Kind == TopicState && h.Edge != "":
		return fmt.Errorf("%w %s: message for edge %s", ErrTopic, t, quote(h.Edge))
	case t.Kind != TopicState && h.Edge != t.Edge:
		return fmt.Errorf("%w %s: message of edge %s", ErrTopic, t, quote(h.Edge))
	}
	return nil
}
