package sync

import (
	"errors"
	"strings"
	"testing"
)

// hostileIDs are ids that must never reach a topic.
var hostileIDs = []string{
	"", "+", "#", "a/b", "/", "a+", "a#b", "gate\x00", "\x00", "$SYS", "$share", "Gate-1", "é", "a b", " ", "-a", "a.b",
	"a_b", "a\n", "..", strings.Repeat("a", MaxIDLen+1), strings.Repeat("€", 30),
}

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "7", "fitclub", "gate-1", "gate-", "0123456789", strings.Repeat("z", MaxIDLen),
		"3f2504e0-4f89-11d3-9a0c-0305e82c3301"} {
		if err := ValidateID(ok); err != nil {
			t.Errorf("ValidateID(%q): %v", ok, err)
		}
	}
	for _, bad := range hostileIDs {
		err := ValidateID(bad)
		if !errors.Is(err, ErrID) {
			t.Errorf("ValidateID(%q) = %v", bad, err)
		}
	}
	// An overlong hostile id is cut in the message.
	if err := ValidateID(strings.Repeat("x", 1000)); len(err.Error()) > 200 {
		t.Errorf("error of %d bytes", len(err.Error()))
	}
}

func TestTopics(t *testing.T) {
	tests := []struct {
		build func(tenant, id string) (string, error)
		want  string
		topic Topic
	}{
		{StateTopic, "varco/v1/fitclub/site/7/state", Topic{TopicState, "fitclub", "7", ""}},
		{SyncTopic, "varco/v1/fitclub/edge/gate-1/sync", Topic{TopicSync, "fitclub", "", "gate-1"}},
		{CatchUpTopic, "varco/v1/fitclub/edge/gate-1/catchup", Topic{TopicCatchUp, "fitclub", "", "gate-1"}},
		{EventsTopic, "varco/v1/fitclub/edge/gate-1/events", Topic{TopicEvents, "fitclub", "", "gate-1"}},
		{AckTopic, "varco/v1/fitclub/edge/gate-1/ack", Topic{TopicAck, "fitclub", "", "gate-1"}},
		{BirthTopic, "varco/v1/fitclub/edge/gate-1/birth", Topic{TopicBirth, "fitclub", "", "gate-1"}},
		{StatusTopic, "varco/v1/fitclub/edge/gate-1/status", Topic{TopicStatus, "fitclub", "", "gate-1"}},
		{CommandTopic, "varco/v1/fitclub/edge/gate-1/cmd", Topic{TopicCommand, "fitclub", "", "gate-1"}},
	}
	seen := map[TopicKind]bool{}
	for _, tc := range tests {
		id := tc.topic.Edge + tc.topic.Site
		got, err := tc.build("fitclub", id)
		if err != nil || got != tc.want {
			t.Errorf("%s topic = %q, %v; want %q", tc.topic.Kind, got, err, tc.want)
		}
		parsed, err := ParseTopic(tc.want)
		if err != nil || parsed != tc.topic {
			t.Errorf("ParseTopic(%q) = %+v, %v; want %+v", tc.want, parsed, err, tc.topic)
		}
		seen[tc.topic.Kind] = true
		for _, bad := range hostileIDs {
			if name, err := tc.build(bad, id); !errors.Is(err, ErrTopic) || !errors.Is(err, ErrID) {
				t.Errorf("%s topic with tenant %q = %q, %v", tc.topic.Kind, bad, name, err)
			}
			if name, err := tc.build("fitclub", bad); !errors.Is(err, ErrTopic) {
				t.Errorf("%s topic with id %q = %q, %v", tc.topic.Kind, bad, name, err)
			}
			hostile := strings.Replace(tc.want, "/"+id+"/", "/"+bad+"/", 1)
			if p, err := ParseTopic(hostile); !errors.Is(err, ErrTopic) {
				t.Errorf("ParseTopic(%q) = %+v, %v", hostile, p, err)
			}
		}
	}
	for k := TopicState; k.Valid(); k++ {
		if !seen[k] {
			t.Errorf("topic %s not tested", k)
		}
	}
	if _, err := (Topic{Kind: TopicEvents, Tenant: "fitclub", Site: "7", Edge: "gate-1"}).Name(); !errors.Is(err, ErrTopic) {
		t.Errorf("topic with site and edge: %v", err)
	}
}

func TestParseTopicRejects(t *testing.T) {
	for _, name := range []string{
		"",
		"varco",
		"varco/v1",
		"varco/v1/fitclub",
		"varco/v1/fitclub/edge/gate-1",
		"varco/v2/fitclub/edge/gate-1/events",
		"Varco/v1/fitclub/edge/gate-1/events",
		"/varco/v1/fitclub/edge/gate-1/events",
		"varco/v1/fitclub/edge/gate-1/events/",
		"varco/v1/fitclub/edge/gate-1/events/more",
		"varco/v1/fitclub/edge//events",
		"varco/v1//edge/gate-1/events",
		"varco/v1/fitclub/site/7/events",
		"varco/v1/fitclub/edge/gate-1/state",
		"varco/v1/fitclub/edges/gate-1/events",
		"varco/v1/fitclub/edge/gate-1/EVENTS",
		"varco/v1/fitclub/edge/gate-1/unknown",
		"varco/v1/+/edge/+/events",
		"varco/v1/fitclub/edge/#",
		"varco/v1/fitclub/#",
		"$share/cloud/varco/v1/fitclub/edge/gate-1/events",
		"$SYS/broker/uptime",
		"varco/v1/fitclub/edge/gate-1/events\x00",
		"varco/v1/fitclub/edge/" + strings.Repeat("a", 500) + "/events",
		strings.Repeat("/", 10000),
	} {
		if p, err := ParseTopic(name); !errors.Is(err, ErrTopic) {
			t.Errorf("ParseTopic(%q) = %+v, %v", name, p, err)
		}
	}
}

func TestTopicCheck(t *testing.T) {
	delta := goldenMsg("delta").(*Delta)
	events := goldenMsg("events").(*Events)
	state := Topic{Kind: TopicState, Tenant: "fitclub", Site: "7"}
	eventsTopic := Topic{Kind: TopicEvents, Tenant: "fitclub", Edge: "gate-1"}
	if err := state.Check(delta); err != nil {
		t.Errorf("Check: %v", err)
	}
	if err := eventsTopic.Check(events); err != nil {
		t.Errorf("Check: %v", err)
	}
	tests := []struct {
		name  string
		topic Topic
		msg   Message
	}{
		{"delta on events topic", eventsTopic, delta},
		{"events on state topic", state, events},
		{"delta of another site", Topic{Kind: TopicState, Tenant: "fitclub", Site: "8"}, delta},
		{"delta of another tenant", Topic{Kind: TopicState, Tenant: "gymco", Site: "7"}, delta},
		{"events of another edge", Topic{Kind: TopicEvents, Tenant: "fitclub", Edge: "gate-2"}, events},
		{"events of another tenant", Topic{Kind: TopicEvents, Tenant: "gymco", Edge: "gate-1"}, events},
		{"catch-up delta on state topic", state, goldenMsg("delta-catchup")},
		{"invalid topic", Topic{Kind: TopicEvents, Tenant: "fitclub", Edge: "+"}, events},
	}
	for _, tc := range tests {
		if err := tc.topic.Check(tc.msg); !errors.Is(err, ErrTopic) {
			t.Errorf("%s: Check = %v", tc.name, err)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
}

func TestTopicKinds(t *testing.T) {
	want := map[TopicKind]struct {
		pub      Side
		retained bool
		filter   string
	}{
		TopicState:   {SideCloud, false, "varco/v1/+/site/+/state"},
		TopicSync:    {SideCloud, false, "varco/v1/+/edge/+/sync"},
		TopicCatchUp: {SideEdge, false, "varco/v1/+/edge/+/catchup"},
		TopicEvents:  {SideEdge, false, "varco/v1/+/edge/+/events"},
		TopicAck:     {SideCloud, false, "varco/v1/+/edge/+/ack"},
		TopicBirth:   {SideEdge, false, "varco/v1/+/edge/+/birth"},
		TopicStatus:  {SideEdge, true, "varco/v1/+/edge/+/status"},
		TopicCommand: {SideCloud, false, "varco/v1/+/edge/+/cmd"},
	}
	carried := map[Kind]bool{}
	for k := TopicState; k.Valid(); k++ {
		w := want[k]
		if k.Publisher() != w.pub || k.Retained() != w.retained || k.Filter() != w.filter || k.QoS() != 1 {
			t.Errorf("%s: publisher %s retained %v filter %s qos %d", k, k.Publisher(), k.Retained(), k.Filter(), k.QoS())
		}
		if perSite := strings.Contains(w.filter, "/site/"); k.PerSite() != perSite {
			t.Errorf("%s: PerSite %v, want %v", k, k.PerSite(), perSite)
		}
		for m := KindDelta; m.Valid(); m++ {
			if k.Carries(m) {
				carried[m] = true
			}
		}
	}
	for m := KindDelta; m.Valid(); m++ {
		if !carried[m] {
			t.Errorf("no topic carries %s", m)
		}
	}
	if TopicKind(0).Valid() || TopicKind(9).Carries(KindDelta) || TopicKind(9).Retained() || TopicKind(9).Publisher() != 0 || TopicKind(9).PerSite() {
		t.Error("invalid topic kind")
	}
}

func FuzzParseTopic(f *testing.F) {
	for k := TopicState; k.Valid(); k++ {
		f.Add(Topic{Kind: k, Tenant: "fitclub", Site: "7", Edge: "gate-1"}.String())
		f.Add(k.Filter())
	}
	f.Add("varco/v1/fitclub/edge/gate\x00/events")
	f.Add("varco/v1/fitclub/edge//events")
	f.Fuzz(func(t *testing.T, name string) {
		topic, err := ParseTopic(name)
		if err != nil {
			if !errors.Is(err, ErrTopic) {
				t.Fatalf("error %v does not wrap ErrTopic", err)
			}
			return
		}
		if err := topic.Validate(); err != nil {
			t.Fatalf("parsed %+v does not validate: %v", topic, err)
		}
		if topic.String() != name {
			t.Fatalf("parsed %q formats as %q", name, topic.String())
		}
		if strings.ContainsAny(name, "+#\x00 ") || strings.Contains(name, "//") {
			t.Fatalf("accepted %q", name)
		}
	})
}
