package edge

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	vsync "varco.dev/protocol/sync"
)

var (
	tenantKey = []byte("0123456789abcdef0123456789abcdef")
	card      = vsync.CredentialHash(tenantKey, "card:118:1603")
	pin       = vsync.CredentialHash(tenantKey, "pin:1234")
	now       = vsync.TimestampOf(time.Date(2026, 11, 25, 18, 30, 0, 0, time.UTC))
	entrance  = Reader{ID: "in-1", Site: "7", Device: vsync.DeviceEntrance, Rows: 2, Cols: 16}
)

func day(n int) vsync.Timestamp { return now + vsync.Timestamp(n)*24*3600*1000 }

// member is a record that passes every check at entrance at now.
func member() *vsync.Record {
	return &vsync.Record{
		Member:      1001,
		Credentials: []vsync.Credential{{Key: card}, {Key: pin, Valid: vsync.Window{From: day(-10), Until: day(10)}}},
		Valid:       []vsync.Window{{From: day(-100), Until: day(265)}},
		Devices:     vsync.DeviceSetOf(vsync.DeviceEntrance, vsync.DeviceExit),
	}
}

func block(id uint64, prio uint8, text string, devices ...vsync.DeviceType) vsync.Action {
	return vsync.Action{ID: id, Mode: vsync.AccessMessageBlock, Devices: vsync.DeviceSetOf(devices...), Text: text, Priority: prio}
}

func msg(id uint64, prio uint8, text string, devices ...vsync.DeviceType) vsync.Action {
	return vsync.Action{ID: id, Mode: vsync.AccessMessage, Devices: vsync.DeviceSetOf(devices...), Text: text, Priority: prio}
}

func TestDecide(t *testing.T) {
	E, X := vsync.DeviceEntrance, vsync.DeviceExit
	tests := []struct {
		name   string
		change func(r *vsync.Record) // nil record if change is nil and rec is false
		noRec  bool
		in     func(in *Input)
		grant  bool
		reason vsync.Reason
		action uint64
		lines  []string
		chain  string
	}{
		{name: "unknown credential", noRec: true, reason: vsync.ReasonUnknownCredential,
			lines: []string{"Unknown badge"}, chain: "credential=fail"},
		{name: "record without the credential", change: func(r *vsync.Record) { r.Credentials = r.Credentials[1:] },
			reason: vsync.ReasonUnknownCredential, lines: []string{"Unknown badge"}},
		{name: "grant", grant: true, lines: []string{"Welcome"},
			chain: "credential=pass credential-window=pass membership=pass suspended=pass site=pass device=pass block=pass"},
		{name: "pin in its window", in: func(in *Input) { in.Credential = pin }, grant: true, lines: []string{"Welcome"}},
		{name: "credential not yet valid", in: func(in *Input) { in.Credential = pin; in.Now = day(-11) },
			reason: vsync.ReasonNotValid, lines: []string{"Badge not yet", "valid"}},
		{name: "credential expired", in: func(in *Input) { in.Credential = pin; in.Now = day(10) },
			reason: vsync.ReasonCredentialExpired, lines: []string{"Badge expired"},
			chain: "credential=pass credential-window=ended membership=pass suspended=pass site=pass device=pass block=pass"},
		{name: "credential window starts now", in: func(in *Input) { in.Credential = pin; in.Now = day(-10) }, grant: true},
		{name: "no membership", change: func(r *vsync.Record) { r.Valid = nil },
			reason: vsync.ReasonNotValid, lines: []string{"No valid", "membership"}},
		{name: "membership expired", change: func(r *vsync.Record) { r.Valid = []vsync.Window{{From: day(-400), Until: day(-35)}} },
			reason: vsync.ReasonNotValid, lines: []string{"Membership", "expired"}},
		{name: "membership ends now", change: func(r *vsync.Record) { r.Valid = []vsync.Window{{Until: now}} },
			reason: vsync.ReasonNotValid, lines: []string{"Membership", "expired"}},
		{name: "membership not yet started", change: func(r *vsync.Record) {
			r.Valid = []vsync.Window{{From: day(-400), Until: day(-35)}, {From: day(3)}}
		}, reason: vsync.ReasonNotValid, lines: []string{"Membership not", "yet started"}},
		{name: "second membership holds", change: func(r *vsync.Record) {
			r.Valid = []vsync.Window{{From: day(-400), Until: day(-35)}, {From: day(-35)}}
		}, grant: true},
		{name: "zero window is always", change: func(r *vsync.Record) { r.Valid = []vsync.Window{{}} }, grant: true},
		{name: "suspended", change: func(r *vsync.Record) { r.Suspended = true },
			reason: vsync.ReasonSuspended, lines: []string{"Membership", "suspended"}},
		{name: "wrong site", change: func(r *vsync.Record) { r.Sites = []string{"3", "4"} },
			reason: vsync.ReasonWrongSite, lines: []string{"Not valid at", "this club"}},
		{name: "listed site", change: func(r *vsync.Record) { r.Sites = []string{"3", "7"} }, grant: true},
		{name: "wrong device", change: func(r *vsync.Record) { r.Devices = vsync.DeviceSetOf(vsync.DeviceSpa) },
			reason: vsync.ReasonWrongDevice, lines: []string{"No access here"}},
		{name: "no device", change: func(r *vsync.Record) { r.Devices = 0 }, reason: vsync.ReasonWrongDevice},
		{name: "exit reader", in: func(in *Input) { in.Reader.Device = X }, grant: true},
		{name: "blocked", change: func(r *vsync.Record) {
			r.Actions = []vsync.Action{block(7, 10, "Please see reception: certificate expired", E)}
		},
			reason: vsync.ReasonBlocked, action: 7, lines: []string{"Please see", "reception:"},
			chain: "credential=pass credential-window=pass membership=pass suspended=pass site=pass device=pass block=fail"},
		{name: "blocked, 4x20", change: func(r *vsync.Record) {
			r.Actions = []vsync.Action{block(7, 10, "Please see reception: certificate expired", E)}
		},
			in: func(in *Input) { in.Reader.Rows, in.Reader.Cols = 4, 20 }, reason: vsync.ReasonBlocked, action: 7,
			lines: []string{"Please see", "reception:", "certificate expired"}},
		{name: "blocking action without text", change: func(r *vsync.Record) { r.Actions = []vsync.Action{block(7, 0, "", E)} },
			reason: vsync.ReasonBlocked, action: 7, lines: []string{"Please see", "reception"}},
		{name: "block for another device", change: func(r *vsync.Record) { r.Actions = []vsync.Action{block(7, 10, "Stop", X)} },
			grant: true, lines: []string{"Welcome"}},
		{name: "block at exit reader", change: func(r *vsync.Record) { r.Actions = []vsync.Action{block(7, 10, "Stop", X)} },
			in: func(in *Input) { in.Reader.Device = X }, reason: vsync.ReasonBlocked, action: 7, lines: []string{"Stop"}},
		{name: "mode none is ignored", change: func(r *vsync.Record) {
			r.Actions = []vsync.Action{{ID: 7, Mode: vsync.AccessNone, Devices: vsync.AllDevices, Text: "Call back"}}
		}, grant: true, lines: []string{"Welcome"}},
		{name: "message", change: func(r *vsync.Record) { r.Actions = []vsync.Action{msg(8, 1, "Happy birthday Anna", E)} },
			grant: true, reason: vsync.ReasonMessage, action: 8, lines: []string{"Happy birthday", "Anna"}},
		{name: "message without text", change: func(r *vsync.Record) { r.Actions = []vsync.Action{msg(8, 1, "", E)} },
			grant: true, reason: vsync.ReasonMessage, action: 8, lines: []string{"Welcome"}},
		{name: "message for another device", change: func(r *vsync.Record) { r.Actions = []vsync.Action{msg(8, 1, "Hi", X)} },
			grant: true, lines: []string{"Welcome"}},
		{name: "block beats message", change: func(r *vsync.Record) {
			r.Actions = []vsync.Action{msg(8, 200, "Renewal talk", E), block(7, 1, "See reception", E)}
		}, in: func(in *Input) { in.Reader.Rows = 4 }, reason: vsync.ReasonBlocked, action: 7,
			lines: []string{"See reception", "Renewal talk"}},
		{name: "blocks by priority", change: func(r *vsync.Record) {
			r.Actions = []vsync.Action{block(7, 1, "Low", E), block(9, 50, "High", E), block(8, 10, "Mid", E)}
		}, in: func(in *Input) { in.Reader.Rows = 4 }, reason: vsync.ReasonBlocked, action: 9, lines: []string{"High", "Mid", "Low"}},
		{name: "equal priorities keep their order", change: func(r *vsync.Record) {
			r.Actions = []vsync.Action{block(7, 5, "First", E), block(9, 5, "Second", E)}
		}, reason: vsync.ReasonBlocked, action: 7, lines: []string{"First", "Second"}},
		{name: "messages and notices by priority", change: func(r *vsync.Record) {
			r.Actions = []vsync.Action{msg(8, 5, "Renewal talk", E), msg(9, 20, "Trainer waits", E)}
			r.Notices = []vsync.Notice{{Text: "Happy birthday", Priority: 10}, {Text: "Ends in 5 days", Priority: 30}}
		}, in: func(in *Input) { in.Reader.Rows = 4 }, grant: true, reason: vsync.ReasonMessage, action: 9,
			lines: []string{"Ends in 5 days", "Trainer waits", "Happy birthday", "Renewal talk"}},
		{name: "notice only", change: func(r *vsync.Record) { r.Notices = []vsync.Notice{{Text: "Happy birthday Anna"}} },
			grant: true, lines: []string{"Happy birthday", "Anna"}},
		{name: "notice out of its window", change: func(r *vsync.Record) {
			r.Notices = []vsync.Notice{{Text: "Old news", Valid: vsync.Window{Until: day(-1)}}, {Text: "Later", Valid: vsync.Window{From: day(1)}}}
		}, grant: true, lines: []string{"Welcome"}},
		{name: "expired and blocked", change: func(r *vsync.Record) {
			r.Valid = []vsync.Window{{Until: day(-1)}}
			r.Actions = []vsync.Action{block(7, 10, "See reception", E)}
		}, in: func(in *Input) { in.Reader.Rows = 4 }, reason: vsync.ReasonNotValid,
			lines: []string{"Membership", "expired", "See reception"},
			chain: "credential=pass credential-window=pass membership=ended suspended=pass site=pass device=pass block=fail"},
		{name: "suspended and wrong site", change: func(r *vsync.Record) { r.Suspended = true; r.Sites = []string{"3"} },
			reason: vsync.ReasonSuspended,
			chain:  "credential=pass credential-window=pass membership=pass suspended=fail site=fail device=pass block=pass"},
		{name: "denied with a message action", change: func(r *vsync.Record) {
			r.Suspended = true
			r.Actions = []vsync.Action{msg(8, 1, "Call Marco", E)}
		}, in: func(in *Input) { in.Reader.Rows = 4 }, reason: vsync.ReasonSuspended,
			lines: []string{"Membership", "suspended", "Call Marco"}},
		{name: "repeated text shown once", change: func(r *vsync.Record) {
			r.Actions = []vsync.Action{block(7, 2, "", E), block(8, 1, "", E)}
		}, in: func(in *Input) { in.Reader.Rows = 4 }, reason: vsync.ReasonBlocked, action: 7,
			lines: []string{"Please see", "reception"}},
		{name: "custom texts", noRec: true, in: func(in *Input) { in.Texts = &Texts{Unknown: "Tessera sconosciuta"} },
			reason: vsync.ReasonUnknownCredential, lines: []string{"Tessera", "sconosciuta"}},
		{name: "custom texts fall back", in: func(in *Input) { in.Texts = &Texts{Unknown: "Sconosciuta"} },
			grant: true, lines: []string{"Welcome"}},
		{name: "no display", in: func(in *Input) { in.Reader.Rows, in.Reader.Cols = 0, 0 }, grant: true, lines: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rec *vsync.Record
			if !tc.noRec {
				rec = member()
				if tc.change != nil {
					tc.change(rec)
				}
			}
			in := Input{Credential: card, Reader: entrance, Now: now}
			if tc.in != nil {
				tc.in(&in)
			}
			d := Decide(rec, in)
			if d.Grant != tc.grant || d.Reason != tc.reason || d.Action != tc.action {
				t.Errorf("grant %v reason %s action %d, want %v %s %d (chain %s)", d.Grant, d.Reason, d.Action,
					tc.grant, tc.reason, tc.action, d.Chain)
			}
			if tc.lines != nil && !reflect.DeepEqual(d.Display.Lines(), tc.lines) {
				t.Errorf("lines %q, want %q", d.Display.Lines(), tc.lines)
			}
			if tc.chain != "" && d.Chain.String() != tc.chain {
				t.Errorf("chain\n%s\nwant\n%s", d.Chain, tc.chain)
			}
			if rec != nil && d.Member != rec.Member {
				t.Errorf("member %d", d.Member)
			}
			checkSignals(t, d)
			checkEvent(t, d, in)
		})
	}
}

// TestDecideOffline runs every offline rule in both modes on a fresh and a
// stale cache, for a member whom the rule's check passes and one whom it
// fails.
func TestDecideOffline(t *testing.T) {
	E := vsync.DeviceEntrance
	rules := []struct {
		rule  vsync.OfflineRule
		check Check
		in    func(in *Input)       // what the member presents
		fail  func(r *vsync.Record) // makes the check fail in the cache
		// reason and text of the cache's own denial
		reason vsync.Reason
		text   string
	}{
		{vsync.RuleBlock, CheckBlock, nil, func(r *vsync.Record) {
			r.Actions = []vsync.Action{block(7, 10, "Certificate due", E)}
		}, vsync.ReasonBlocked, "Certificate due"},
		{vsync.RuleMembership, CheckMembership, nil, func(r *vsync.Record) {
			r.Valid = []vsync.Window{{Until: day(-1)}}
		}, vsync.ReasonNotValid, "Membership"},
		{vsync.RuleCredential, CheckCredentialWindow, func(in *Input) { in.Credential = pin }, func(r *vsync.Record) {
			r.Credentials[1].Valid.Until = day(-1)
		}, vsync.ReasonCredentialExpired, "Badge expired"},
		{vsync.RuleSuspended, CheckSuspended, nil, func(r *vsync.Record) { r.Suspended = true },
			vsync.ReasonSuspended, "Membership"},
	}
	const limit = 600 // seconds
	for _, r := range rules {
		for _, mode := range []vsync.OfflineMode{vsync.FailOpen, vsync.FailClosed} {
			for _, stale := range []time.Duration{0, limit * time.Second, limit*time.Second + time.Millisecond, Forever} {
				for _, fails := range []bool{false, true} {
					name := fmt.Sprintf("%s/%s/stale %v/cache fails %v", r.rule, mode, stale, fails)
					t.Run(name, func(t *testing.T) {
						rec := member()
						if fails {
							r.fail(rec)
						}
						in := Input{Credential: card, Reader: entrance, Now: now, Stale: stale,
							Policy: &vsync.OfflinePolicy{Limits: []vsync.OfflineLimit{{Rule: r.rule, Mode: mode, After: limit}}}}
						if r.in != nil {
							r.in(&in)
						}
						// What the cache says, unless the rule's limit is exceeded.
						grant, reason, text, outcome := !fails, r.reason, r.text, Pass
						if fails {
							outcome = Decide(rec, Input{Credential: in.Credential, Reader: entrance, Now: now}).Chain[r.check]
						} else {
							reason, text = vsync.ReasonNone, "Welcome"
						}
						if stale > limit*time.Second {
							switch {
							case mode == vsync.FailOpen && fails:
								grant, reason, outcome = true, vsync.ReasonStaleOpen, StaleOpen
								text = "" // the blocking action's text, if any, is still shown
							case mode == vsync.FailClosed && !fails:
								grant, reason, text, outcome = false, vsync.ReasonStale, "Offline: please", Stale
							}
						}
						d := Decide(rec, in)
						if d.Grant != grant || d.Reason != reason {
							t.Errorf("grant %v reason %s, want %v %s (chain %s)", d.Grant, d.Reason, grant, reason, d.Chain)
						}
						if d.Chain[r.check] != outcome {
							t.Errorf("%s=%s, want %s", r.check, d.Chain[r.check], outcome)
						}
						if lines := d.Display.Lines(); text != "" && (len(lines) == 0 || !strings.HasPrefix(lines[0], text)) {
							t.Errorf("display %q, want it to start with %q", lines, text)
						}
						checkSignals(t, d)
						checkEvent(t, d, in)
					})
				}
			}
		}
	}
}

// TestDecideOfflineScope: a rule only changes its own check, an unknown
// credential stays unknown, and no policy leaves the cache's answer.
func TestDecideOfflineScope(t *testing.T) {
	closedBlock := &vsync.OfflinePolicy{Limits: []vsync.OfflineLimit{{Rule: vsync.RuleBlock, Mode: vsync.FailClosed, After: 60}}}
	openAll := &vsync.OfflinePolicy{Limits: []vsync.OfflineLimit{
		{Rule: vsync.RuleBlock, Mode: vsync.FailOpen, After: 60}, {Rule: vsync.RuleMembership, Mode: vsync.FailOpen, After: 60},
		{Rule: vsync.RuleCredential, Mode: vsync.FailOpen, After: 60}, {Rule: vsync.RuleSuspended, Mode: vsync.FailOpen, After: 60}}}
	expiredWrongSite := member()
	expiredWrongSite.Valid = []vsync.Window{{Until: day(-1)}}
	expiredWrongSite.Sites = []string{"3"}
	messaged := member()
	messaged.Actions = []vsync.Action{msg(8, 1, "Renewal talk", vsync.DeviceEntrance)}
	tests := []struct {
		name   string
		rec    *vsync.Record
		policy *vsync.OfflinePolicy
		grant  bool
		reason vsync.Reason
		lines  []string
	}{
		{"unknown credential under fail-open", nil, openAll, false, vsync.ReasonUnknownCredential, []string{"Unknown badge"}},
		{"wrong site is not governed", expiredWrongSite, openAll, false, vsync.ReasonWrongSite, []string{"Not valid at", "this club"}},
		{"no policy, stale forever", member(), nil, true, vsync.ReasonNone, []string{"Welcome"}},
		{"stale block denies before the message", messaged, closedBlock, false, vsync.ReasonStale, []string{"Offline: please", "see reception"}},
		{"stale-open grant keeps the texts, not the action", messaged, &vsync.OfflinePolicy{Limits: []vsync.OfflineLimit{
			{Rule: vsync.RuleSuspended, Mode: vsync.FailOpen, After: 60}}}, true, vsync.ReasonMessage, []string{"Renewal talk"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Credential: card, Reader: entrance, Now: now, Policy: tc.policy, Stale: Forever}
			d := Decide(tc.rec, in)
			if d.Grant != tc.grant || d.Reason != tc.reason || !reflect.DeepEqual(d.Display.Lines(), tc.lines) {
				t.Errorf("grant %v reason %s lines %q, want %v %s %q (chain %s)", d.Grant, d.Reason, d.Display.Lines(),
					tc.grant, tc.reason, tc.lines, d.Chain)
			}
			checkEvent(t, d, in)
		})
	}
}

func checkSignals(t *testing.T, d Decision) {
	t.Helper()
	want := SignalDeny
	switch {
	case d.Reason == vsync.ReasonMessage:
		want = SignalMessage
	case d.Grant:
		want = SignalGrant
	case d.Reason == vsync.ReasonBlocked:
		want = SignalBlocked
	case d.Reason == vsync.ReasonReaderFault:
		want = SignalFault
	}
	if d.Signals != want {
		t.Errorf("signals %+v, want %+v", d.Signals, want)
	}
}

// checkEvent checks that the decision's event is one the sync protocol
// accepts.
func checkEvent(t *testing.T, d Decision, in Input) {
	t.Helper()
	ev := d.Event(in)
	ev.Seq = 1
	batch := &vsync.Events{Header: vsync.Header{Tenant: "fitclub", Site: "7", Edge: "gate-1"}, Boot: 1, Events: []vsync.Event{ev}}
	if err := batch.Validate(); err != nil {
		t.Errorf("event %+v: %v", ev, err)
	}
	if ev.Member != d.Member || ev.Action != d.Action || ev.Reason != d.Reason || (ev.Decision == vsync.DecisionGrant) != d.Grant {
		t.Errorf("event %+v of decision %+v", ev, d)
	}
}

func TestFault(t *testing.T) {
	in := Input{Reader: entrance, Now: now}
	d := Fault(in)
	if d.Grant || d.Reason != vsync.ReasonReaderFault || !reflect.DeepEqual(d.Display.Lines(), []string{"Please try again"}) {
		t.Errorf("fault: %+v", d)
	}
	checkSignals(t, d)
	checkEvent(t, d, in)
}

func TestDecideAllocs(t *testing.T) {
	rec := member()
	rec.Actions = []vsync.Action{block(7, 10, "Please see reception: medical certificate expired", vsync.DeviceEntrance), msg(8, 1, "Hi", vsync.DeviceEntrance)}
	rec.Notices = []vsync.Notice{{Text: "Happy birthday Anna"}}
	in := Input{Credential: card, Reader: Reader{ID: "in-1", Site: "7", Device: vsync.DeviceEntrance, Rows: 4, Cols: 20}, Now: now}
	var d Decision
	if n := testing.AllocsPerRun(1000, func() { d = Decide(rec, in) }); n != 0 {
		t.Errorf("Decide allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { d = Decide(nil, in) }); n != 0 {
		t.Errorf("Decide of an unknown credential allocates %v times", n)
	}
	in.Policy, in.Stale = &vsync.OfflinePolicy{Limits: []vsync.OfflineLimit{
		{Rule: vsync.RuleMembership, Mode: vsync.FailClosed, After: 60}, {Rule: vsync.RuleBlock, Mode: vsync.FailOpen, After: 60}}}, Forever
	if n := testing.AllocsPerRun(1000, func() { d = Decide(rec, in) }); n != 0 {
		t.Errorf("Decide with an offline policy allocates %v times", n)
	}
	_ = d
}

func TestFsyncPolicy(t *testing.T) {
	for _, p := range []FsyncPolicy{FsyncAlways, FsyncBatch, FsyncNever} {
		got, err := ParseFsyncPolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParseFsyncPolicy(%q) = %v, %v", p, got, err)
		}
	}
	if _, err := ParseFsyncPolicy("sometimes"); err == nil {
		t.Error("ParseFsyncPolicy accepted sometimes")
	}
}

func BenchmarkDecide(b *testing.B) {
	rec := member()
	rec.Actions = []vsync.Action{block(7, 10, "Please see reception: medical certificate expired", vsync.DeviceEntrance)}
	in := Input{Credential: card, Reader: Reader{ID: "in-1", Site: "7", Device: vsync.DeviceEntrance, Rows: 4, Cols: 20}, Now: now}
	b.Run("fresh", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Decide(rec, in)
		}
	})
	// Stale, with a limit on every rule: the policy's cost.
	in.Stale = Forever
	in.Policy = &vsync.OfflinePolicy{Limits: []vsync.OfflineLimit{
		{Rule: vsync.RuleBlock, Mode: vsync.FailOpen, After: 60}, {Rule: vsync.RuleMembership, Mode: vsync.FailClosed, After: 60},
		{Rule: vsync.RuleCredential, Mode: vsync.FailOpen, After: 60}, {Rule: vsync.RuleSuspended, Mode: vsync.FailClosed, After: 60}}}
	b.Run("stale", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Decide(rec, in)
		}
	})
}
