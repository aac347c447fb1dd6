package mqtt_test

import (
	"fmt"
	"strings"
	"testing"

	"varco.dev/cloud/mqtt"
)

// aclCase is a publish (write) or a subscription that the policy allows or
// refuses a fixture user ("" for the zero credential).
type aclCase struct {
	user  string
	topic string // a topic name, or a filter for a subscription
	write bool
	want  bool
	// probe is, for a subscription to a wildcard or shared filter, a topic
	// it matches that the test publishes on to see whether the broker
	// delivers it; "" for none. Other subscriptions are probed on topic.
	probe string
}

// aclCases is the one table of the policy: TestAllowed runs it against
// Allowed, and testACL over TCP against the embedded broker and Mosquitto.
var aclCases = []aclCase{
	// An edge publishes its own upstream topics...
	{user: "t1/e1", topic: "varco/v1/t1/edge/e1/events", write: true, want: true},
	{user: "t1/e1", topic: "varco/v1/t1/edge/e1/birth", write: true, want: true},
	{user: "t1/e1", topic: "varco/v1/t1/edge/e1/status", write: true, want: true},
	{user: "t1/e1", topic: "varco/v1/t1/edge/e1/catchup", write: true, want: true},
	// ...and nothing else.
	{user: "t1/e1", topic: "varco/v1/t1/edge/e1/sync", write: true},     // the cloud's
	{user: "t1/e1", topic: "varco/v1/t1/edge/e1/ack", write: true},      // the cloud's
	{user: "t1/e1", topic: "varco/v1/t1/edge/e1/cmd", write: true},      // the cloud's
	{user: "t1/e1", topic: "varco/v1/t1/site/s1/state", write: true},    // a forged delta
	{user: "t1/e1", topic: "varco/v1/t1/edge/e2/events", write: true},   // another edge
	{user: "t1/e1", topic: "varco/v1/t2/edge/e1/events", write: true},   // another tenant, same edge id
	{user: "t1/e1", topic: "varco/v1/t1/edge/+/events", write: true},    // wildcard
	{user: "t1/e1", topic: "varco/v1/t1/edge/E1/events", write: true},   // malformed id
	{user: "t1/e1", topic: "varco/v1/t1/edge/e1/events/x", write: true}, // extra level
	{user: "t1/e1", topic: "varco/v1/t1/edge/e1/unknown", write: true},  // no such kind
	{user: "t1/e1", topic: "varco/v2/t1/edge/e1/events", write: true},   // another prefix
	{user: "t1/e1", topic: "$SYS/broker/clients/connected", write: true},

	// An edge subscribes its site's state and its own downstream topics...
	{user: "t1/e1", topic: "varco/v1/t1/site/s1/state", want: true},
	{user: "t1/e1", topic: "varco/v1/t1/edge/e1/sync", want: true},
	{user: "t1/e1", topic: "varco/v1/t1/edge/e1/ack", want: true},
	{user: "t1/e1", topic: "varco/v1/t1/edge/e1/cmd", want: true},
	// ...and nothing else.
	{user: "t1/e1", topic: "varco/v1/t1/edge/e1/events"},      // its own upstream
	{user: "t1/e1", topic: "varco/v1/t1/edge/e1/status"},      // its own upstream
	{user: "t1/e1", topic: "varco/v1/t1/edge/e2/status"},      // another edge's
	{user: "t1/e1", topic: "varco/v1/t1/site/s2/state"},       // another site
	{user: "t1/e1", topic: "varco/v1/t2/site/s1/state"},       // another tenant
	{user: "t1/e1", topic: "varco/v1/t1/edge/e2/cmd"},         // another edge
	{user: "t1/e1", topic: "varco/v1/t1/site/S1/state"},       // malformed id
	{user: "t1/e1", topic: "varco/v1/t1/site/s1/state/extra"}, // extra level
	{user: "t1/e1", topic: "varco/v1/t1/site/+/state", probe: "varco/v1/t1/site/s2/state"},
	{user: "t1/e1", topic: "varco/v1/t1/edge/e1/+", probe: "varco/v1/t1/edge/e1/events"},
	{user: "t1/e1", topic: "varco/v1/#", probe: "varco/v1/t1/edge/e2/cmd"},
	{user: "t1/e1", topic: "#", probe: "varco/v1/t2/edge/e1/cmd"},
	// Shared: Mosquitto grants it and delivers what the edge may read anyway.
	{user: "t1/e1", topic: "$share/g/varco/v1/t1/site/s1/state", probe: "varco/v1/t1/site/s1/state"},
	{user: "t1/e1", topic: "$SYS/#"}, // only the broker publishes there: no probe
	{user: "t1/e1", topic: ""},
	{user: "", topic: "varco/v1/t1/site/s1/state"}, // zero credential: nothing

	// The cloud may do anything.
	{user: "cloud", topic: "varco/v1/t1/site/s1/state", write: true, want: true},
	{user: "cloud", topic: "$share/cloud/varco/v1/+/edge/+/events", want: true, probe: "varco/v1/t2/edge/e1/events"},
	{user: "cloud", topic: "#", want: true, probe: "varco/v1/t1/edge/e1/events"},
}

func (tc aclCase) String() string {
	op := "subscribe"
	if tc.write {
		op = "publish"
	}
	return fmt.Sprintf("%s %s %q", tc.user, op, tc.topic)
}

func TestAllowed(t *testing.T) {
	t.Parallel()
	for _, tc := range aclCases {
		if got := mqtt.Allowed(user(t, tc.user), tc.topic, tc.write); got != tc.want {
			t.Errorf("Allowed(%s) = %v, want %v", tc, got, tc.want)
		}
	}
}

// testACL runs aclCases over TCP against s, on one connection per user: a
// publish must reach a cloud subscriber if and only if it is allowed; a
// subscription gets the SUBACK that s gives, and its probe topic reaches the
// subscriber only if the subscription is allowed (or s does not refuse
// subscriptions) and the ACL lets the subscriber read the probe. Cases that
// cannot go on the wire are skipped: the zero credential, and the protocol
// violations (an empty filter, a publish to a wildcard), after which a
// broker closes the connection (TestPublishRefusedDisconnects).
func testACL(t *testing.T, s server) {
	// The test's own cloud client: observes publishes, publishes probes.
	cloud := mustDial(t, s.addr, "cloud2", nil)
	if code := cloud.subscribe(t, "#"); code != 1 {
		t.Fatalf("cloud subscribe: code %#x", code)
	}
	clients := map[string]*client{}
	for _, tc := range aclCases {
		if _, ok := clients[tc.user]; !ok && tc.user != "" {
			clients[tc.user] = mustDial(t, s.addr, tc.user, nil)
		}
	}
	for i, tc := range aclCases {
		if tc.user == "" || tc.topic == "" || tc.write && strings.ContainsAny(tc.topic, "+#") {
			continue
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Log(tc)
			c, client := user(t, tc.user), clients[tc.user]
			probe, marker := fmt.Sprintf("probe %d", i), fmt.Sprintf("marker %d", i)
			if tc.write {
				// Refused at QoS 0: dropped without a word, the connection
				// stays. Then a marker, allowed at QoS 1.
				client.publish(t, tc.topic, 0, false, probe)
				client.publish(t, upstream(c), 1, false, marker)
				if got := receivedBefore(t, cloud, probe, marker); got != tc.want {
					t.Errorf("%s: the publish arrived: %v, want %v", tc, got, tc.want)
				}
				return
			}
			if code := client.subscribe(t, downstream(c)); code != 1 {
				t.Fatalf("subscribe to the marker topic %s: code %#x", downstream(c), code)
			}
			defer client.unsubscribe(t, tc.topic, downstream(c))
			code := client.subscribe(t, tc.topic)
			switch {
			case tc.want && code != 1:
				t.Errorf("%s: SUBACK code %#x, want 1", tc, code)
			case !tc.want && s.refusesSubscribe && code != 0x80:
				t.Errorf("%s: SUBACK code %#x, want 0x80", tc, code)
			}
			topic := tc.topic
			if tc.probe != "" || strings.ContainsAny(topic, "+#") || strings.HasPrefix(topic, "$") {
				topic = tc.probe
			}
			if topic == "" {
				return
			}
			cloud.publish(t, topic, 1, false, probe)
			cloud.publish(t, downstream(c), 1, false, marker)
			want := (tc.want || !s.refusesSubscribe) && mqtt.Allowed(c, topic, false)
			if got := receivedBefore(t, client, probe, marker); got != want {
				t.Errorf("%s: the probe on %s arrived: %v, want %v", tc, topic, got, want)
			}
		})
	}
}

// upstream is a topic c may publish on.
func upstream(c mqtt.Credential) string {
	if c.Cloud {
		return "varco/v1/t1/site/s1/state"
	}
	return "varco/v1/" + c.Tenant + "/edge/" + c.Edge + "/events"
}

// downstream is a topic c may subscribe to.
func downstream(c mqtt.Credential) string {
	if c.Cloud {
		return "varco/v1/t1/edge/e1/events"
	}
	return "varco/v1/" + c.Tenant + "/edge/" + c.Edge + "/cmd"
}

// receivedBefore reads c's messages until one with payload marker and
// reports whether one with payload probe came first.
func receivedBefore(t *testing.T, c *client, probe, marker string) bool {
	t.Helper()
	seen := false
	for {
		switch c.next(t).payload {
		case probe:
			seen = true
		case marker:
			return seen
		}
	}
}

func TestCredentialValidate(t *testing.T) {
	t.Parallel()
	creds := mqtt.NewMemCredentials(cheap)
	for _, tc := range []struct{ tenant, site, edge, password string }{
		{"T1", "s1", "e1", password}, // upper case
		{"t1", "", "e1", password},   // no site
		{"t1", "s1", "e/1", password},
		{"t1", "s1", "e1", ""},
	} {
		if _, err := creds.AddEdge(tc.tenant, tc.site, tc.edge, tc.password); err == nil {
			t.Errorf("AddEdge(%q, %q, %q, %q): no error", tc.tenant, tc.site, tc.edge, tc.password)
		}
	}
	if err := creds.AddCloud("t1/cloud", password); err == nil {
		t.Error("AddCloud with a '/': no error")
	}
	if _, err := creds.Credential(t.Context(), "t1/e1"); err == nil {
		t.Error("Credential of an unknown user: no error")
	}
}
