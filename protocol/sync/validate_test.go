package sync

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// validDelta returns a fresh copy of the golden delta, for tests to break.
func validDelta() *Delta {
	k1, k2, k3 := key("card:1:1"), key("card:1:2"), key("card:1:3")
	return &Delta{
		Header:  Header{Tenant: "fitclub", Site: "7", Time: t0},
		Version: 11, Prev: 10,
		Upserts: []Record{
			{Member: 1, Credentials: []Credential{{Key: k1}, {Key: k2}}, Valid: []Window{{From: t0, Until: day(30)}}, Devices: AllDevices,
				Actions: []Action{{ID: 5, Mode: AccessMessageBlock, Devices: DeviceSetOf(DeviceEntrance), Text: "See reception"}},
				Notices: []Notice{{Text: "Ciao!"}}},
			{Member: 2, Credentials: []Credential{{Key: k3}}},
		},
		Deletes: []MemberRef{3},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		msg   func() Message
		error string // "" for valid
	}{
		{"valid delta", func() Message { return validDelta() }, ""},
		{"empty delta", func() Message { d := validDelta(); d.Upserts, d.Deletes = nil, nil; return d }, ""},
		{"delta with edge", func() Message { d := validDelta(); d.Edge = "gate-1"; return d }, ""},
		{"delta with policy", func() Message { d := validDelta(); d.Policy = &OfflinePolicy{Limits: []OfflineLimit{{RuleBlock, FailClosed, 60}}}; return d }, ""},
		{"delta with empty policy", func() Message { d := validDelta(); d.Policy = &OfflinePolicy{}; return d }, ""},
		{"policy rule twice", func() Message {
			d := validDelta()
			d.Policy = &OfflinePolicy{Limits: []OfflineLimit{{RuleBlock, FailClosed, 60}, {RuleBlock, FailOpen, 60}}}
			return d
		}, "policy: limits[1]: rule block twice"},
		{"policy unknown rule", func() Message { d := validDelta(); d.Policy = &OfflinePolicy{Limits: []OfflineLimit{{9, FailOpen, 60}}}; return d }, "limits[0]: unknown rule 9"},
		{"policy unknown mode", func() Message { d := validDelta(); d.Policy = &OfflinePolicy{Limits: []OfflineLimit{{RuleSuspended, 0, 60}}}; return d }, "(suspended): unknown mode 0"},
		{"policy after 0", func() Message { d := validDelta(); d.Policy = &OfflinePolicy{Limits: []OfflineLimit{{RuleCredential, FailOpen, 0}}}; return d }, "after 0 s"},
		{"policy after too long", func() Message {
			d := validDelta()
			d.Policy = &OfflinePolicy{Limits: []OfflineLimit{{RuleCredential, FailOpen, MaxOfflineAfter + 1}}}
			return d
		}, "want 1 to 2592000"},
		{"no tenant", func() Message { d := validDelta(); d.Tenant = ""; return d }, "tenant: invalid id: empty"},
		{"no site", func() Message { d := validDelta(); d.Site = ""; return d }, "no site"},
		{"hostile edge", func() Message { d := validDelta(); d.Edge = "#"; return d }, `edge: invalid id "#"`},
		{"negative time", func() Message { d := validDelta(); d.Time = -1; return d }, "before 1970"},
		{"version not after prev", func() Message { d := validDelta(); d.Version = d.Prev; return d }, "version 10 is not after prev 10"},
		{"member 0", func() Message { d := validDelta(); d.Upserts[1].Member = 0; return d }, "upserts[1]: member ref 0"},
		{"member twice", func() Message { d := validDelta(); d.Upserts[1].Member = 1; return d }, "upserts[1]: member 1 twice"},
		{"upserted and deleted", func() Message { d := validDelta(); d.Deletes = []MemberRef{2}; return d }, "deletes[0]: member 2 twice"},
		{"deleted twice", func() Message { d := validDelta(); d.Deletes = []MemberRef{3, 3}; return d }, "deletes[1]: member 3 twice"},
		{"delete 0", func() Message { d := validDelta(); d.Deletes = []MemberRef{0}; return d }, "deletes[0]: member ref 0"},
		{"credential of two members", func() Message {
			d := validDelta()
			d.Upserts[1].Credentials[0] = d.Upserts[0].Credentials[1]
			return d
		}, "is also member 1's"},
		{"credential twice", func() Message {
			d := validDelta()
			d.Upserts[0].Credentials[1] = d.Upserts[0].Credentials[0]
			return d
		}, "credentials[1]: key"},
		{"zero credential", func() Message { d := validDelta(); d.Upserts[1].Credentials[0].Key = CredentialKey{}; return d }, "member 2: credentials[0]: zero key"},
		{"too many credentials", func() Message {
			d := validDelta()
			for i := range MaxCredentials {
				d.Upserts[1].Credentials = append(d.Upserts[1].Credentials, Credential{Key: key("pin:" + strings.Repeat("1", i+4))})
			}
			return d
		}, "17 credentials, max 16"},
		{"reversed window", func() Message {
			d := validDelta()
			d.Upserts[0].Valid[0] = Window{From: day(2), Until: day(1)}
			return d
		}, "valid[0]: window ends"},
		{"empty window", func() Message { d := validDelta(); d.Upserts[0].Valid[0] = Window{From: t0, Until: t0}; return d }, "valid[0]: window ends"},
		{"negative window", func() Message { d := validDelta(); d.Upserts[0].Credentials[0].Valid = Window{From: -5}; return d }, "credentials[0]: window"},
		{"unknown device bit", func() Message { d := validDelta(); d.Upserts[0].Devices = 1 << 20; return d }, "devices: unknown device types in set 0x100000"},
		{"device bit 0", func() Message { d := validDelta(); d.Upserts[0].Devices = 1; return d }, "unknown device types"},
		{"hostile site scope", func() Message { d := validDelta(); d.Upserts[0].Sites = []string{"7", "+"}; return d }, `sites[1]: invalid id "+"`},
		{"site scope twice", func() Message { d := validDelta(); d.Upserts[0].Sites = []string{"7", "7"}; return d }, "sites[1]: 7 twice"},
		{"unknown access mode", func() Message { d := validDelta(); d.Upserts[0].Actions[0].Mode = 3; return d }, "unknown access mode 3"},
		{"blocking for no device", func() Message { d := validDelta(); d.Upserts[0].Actions[0].Devices = 0; return d }, "message_block for no device type"},
		{"mode none for no device", func() Message {
			d := validDelta()
			d.Upserts[0].Actions[0].Mode, d.Upserts[0].Actions[0].Devices = AccessNone, 0
			return d
		}, ""},
		{"action id 0", func() Message { d := validDelta(); d.Upserts[0].Actions[0].ID = 0; return d }, "actions[0]: id 0"},
		{"action twice", func() Message {
			d := validDelta()
			d.Upserts[0].Actions = append(d.Upserts[0].Actions, d.Upserts[0].Actions[0])
			return d
		}, "actions[1]: id 5 twice"},
		{"text too long", func() Message { d := validDelta(); d.Upserts[0].Actions[0].Text = strings.Repeat("è", 129); return d }, "text of 258 bytes, max 256"},
		{"text at the limit", func() Message { d := validDelta(); d.Upserts[0].Actions[0].Text = strings.Repeat("è", 128); return d }, ""},
		{"text with escape", func() Message { d := validDelta(); d.Upserts[0].Notices[0].Text = "hi \x1b[2J"; return d }, "control character U+001B"},
		{"text with CR", func() Message { d := validDelta(); d.Upserts[0].Notices[0].Text = "a\r\nb"; return d }, "control character U+000D"},
		{"text not UTF-8", func() Message { d := validDelta(); d.Upserts[0].Notices[0].Text = "\xff"; return d }, "not UTF-8"},
		{"notice without text", func() Message { d := validDelta(); d.Upserts[0].Notices[0].Text = ""; return d }, "notices[0]: no text"},
		{"too many records", func() Message {
			d := validDelta()
			d.Deletes = make([]MemberRef, MaxRecords)
			return d
		}, "4098 upserts and deletes, max 4096"},

		{"valid snapshot", func() Message { return goldenMsg("snapshot") }, ""},
		{"snapshot without edge", func() Message { s := goldenMsg("snapshot").(*Snapshot); s.Edge = ""; return s }, "no edge"},
		{"snapshot chunk out of range", func() Message { s := goldenMsg("snapshot").(*Snapshot); s.Chunk = 3; return s }, "chunk 3 of 3"},
		{"snapshot of no chunks", func() Message { s := goldenMsg("snapshot").(*Snapshot); s.Chunks, s.Chunk = 0, 0; return s }, "0 chunks"},
		{"snapshot id 0", func() Message { s := goldenMsg("snapshot").(*Snapshot); s.ID = 0; return s }, "id 0"},
		{"snapshot policy in chunk 1", func() Message {
			s := goldenMsg("snapshot").(*Snapshot)
			s.Policy = &OfflinePolicy{Limits: []OfflineLimit{{RuleBlock, FailOpen, 60}}}
			return s
		}, "policy in chunk 1"},
		{"snapshot policy in chunk 0", func() Message {
			s := goldenMsg("snapshot").(*Snapshot)
			s.Chunk = 0
			s.Policy = &OfflinePolicy{Limits: []OfflineLimit{{RuleBlock, FailOpen, 60}}}
			return s
		}, ""},

		{"catchup without edge", func() Message { c := goldenMsg("catchup").(*CatchUp); c.Edge = ""; return c }, "no edge"},

		{"birth boot 0", func() Message { b := goldenMsg("birth").(*Birth); b.Boot = 0; return b }, "boot id 0"},
		{"birth software with space", func() Message { b := goldenMsg("birth").(*Birth); b.Software = "v1 beta"; return b }, "byte ' ' at 2"},
		{"birth without software", func() Message { b := goldenMsg("birth").(*Birth); b.Software = ""; return b }, "software version of 0 bytes"},
		{"birth reader twice", func() Message { b := goldenMsg("birth").(*Birth); b.Readers[1].ID = "in-1"; return b }, "readers[1]: in-1 twice"},
		{"birth reader device 0", func() Message { b := goldenMsg("birth").(*Birth); b.Readers[1].Device = 0; return b }, "unknown device type 0"},
		{"birth hostile reader", func() Message { b := goldenMsg("birth").(*Birth); b.Readers[1].ID = "out/1"; return b }, `readers[1]: invalid id "out/1"`},

		{"status boot 0", func() Message { s := goldenMsg("status-online").(*Status); s.Boot = 0; return s }, "boot id 0"},

		{"events empty", func() Message { e := goldenMsg("events").(*Events); e.Events = nil; return e }, "no events"},
		{"events gap", func() Message { e := goldenMsg("events").(*Events); e.Events[2].Seq++; return e }, "events[2]: seq 12349 after 12347"},
		{"events seq 0", func() Message {
			e := goldenMsg("events").(*Events)
			e.Events = e.Events[:1]
			e.Events[0].Seq = 0
			return e
		}, "seq 0"},
		{"event kind 0", func() Message { e := goldenMsg("events").(*Events); e.Events[0].Kind = 0; return e }, "unknown kind 0"},
		{"event unknown reason", func() Message { e := goldenMsg("events").(*Events); e.Events[0].Reason = 200; return e }, "unknown reason 200"},
		{"grant with deny reason", func() Message { e := goldenMsg("events").(*Events); e.Events[0].Reason = ReasonSuspended; return e }, "grant with reason suspended"},
		{"deny without reason", func() Message { e := goldenMsg("events").(*Events); e.Events[2].Reason = ReasonNone; return e }, "deny with reason none"},
		{"grant stale-open", func() Message {
			e := goldenMsg("events").(*Events)
			e.Events[0].Reason, e.Events[0].Action = ReasonStaleOpen, 0
			return e
		}, ""},
		{"deny stale-open", func() Message { e := goldenMsg("events").(*Events); e.Events[2].Reason = ReasonStaleOpen; return e }, "deny with reason stale-open"},
		{"deny stale", func() Message { e := goldenMsg("events").(*Events); e.Events[2].Reason, e.Events[2].Action = ReasonStale, 0; return e }, ""},
		{"passage without decision", func() Message { e := goldenMsg("events").(*Events); e.Events[0].Decision = DecisionNone; return e }, "passage with decision none"},
		{"blocked without action", func() Message { e := goldenMsg("events").(*Events); e.Events[1].Action = 0; return e }, "reason blocked with action 0"},
		{"passage without credential", func() Message { e := goldenMsg("events").(*Events); e.Events[0].Credential = CredentialKey{}; return e }, "without credential"},
		{"reader event with decision", func() Message { e := goldenMsg("events").(*Events); e.Events[3].Decision = DecisionGrant; return e }, "reader-offline with passage fields"},
		{"remote open without command", func() Message { e := goldenMsg("events").(*Events); e.Events[4].Command = 0; return e }, "remote-open with command 0"},
		{"event without reader", func() Message { e := goldenMsg("events").(*Events); e.Events[0].Reader = ""; return e }, "no reader"},
		{"resync done without reader", func() Message {
			e := goldenMsg("events").(*Events)
			e.Events = e.Events[:1]
			e.Events[0] = Event{Seq: e.Events[0].Seq, Time: t0, Kind: EventCommandDone, Command: 9}
			return e
		}, ""},
		{"command done without command", func() Message {
			e := goldenMsg("events").(*Events)
			e.Events = e.Events[:1]
			e.Events[0] = Event{Seq: e.Events[0].Seq, Time: t0, Kind: EventCommandDone, Reader: "in-1"}
			return e
		}, "command-done with command 0"},
		{"event hostile reader", func() Message { e := goldenMsg("events").(*Events); e.Events[0].Reader = "in 1"; return e }, "reader: invalid id"},
		{"events boot 0", func() Message { e := goldenMsg("events").(*Events); e.Boot = 0; return e }, "boot id 0"},

		{"ack seq 0", func() Message { a := goldenMsg("ack").(*Ack); a.Seq = 0; return a }, "seq 0"},
		{"ack without edge", func() Message { a := goldenMsg("ack").(*Ack); a.Edge = ""; return a }, "no edge"},

		{"command without expiry", func() Message { c := goldenMsg("command-open").(*Command); c.Expires = 0; return c }, "no expiry"},
		{"command expired at birth", func() Message { c := goldenMsg("command-open").(*Command); c.Expires = c.Time; return c }, "expires"},
		{"open without reader", func() Message { c := goldenMsg("command-open").(*Command); c.Reader = ""; return c }, "open: reader: invalid id: empty"},
		{"open with text", func() Message { c := goldenMsg("command-open").(*Command); c.Text = "x"; return c }, "open with text"},
		{"resync with reader", func() Message { c := goldenMsg("command-resync").(*Command); c.Reader = "in-1"; return c }, "resync with a reader"},
		{"show too long", func() Message { c := goldenMsg("command-show").(*Command); c.Seconds = MaxShowSeconds + 1; return c }, "show for 601 seconds"},
		{"show without text", func() Message { c := goldenMsg("command-show").(*Command); c.Text = ""; return c }, "show without text"},
		{"unknown op", func() Message { c := goldenMsg("command-resync").(*Command); c.Op = 9; return c }, "unknown op 9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.msg().Validate()
			if tc.error == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted it; want %q", tc.error)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.error) {
				t.Fatalf("Validate = %q; want ErrInvalid with %q", err, tc.error)
			}
			if _, err := Marshal(tc.msg()); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Marshal = %v; want ErrInvalid", err)
			}
		})
	}
}

// goldenMsg returns a deep copy of the golden case of that name, by a round
// trip through the codec.
func goldenMsg(name string) Message {
	for _, tc := range goldenCases {
		if tc.name == name {
			b, err := Marshal(tc.msg)
			if err != nil {
				panic(err)
			}
			m, err := Unmarshal(b)
			if err != nil {
				panic(err)
			}
			return m
		}
	}
	panic("no golden case " + name)
}

func TestDeltaStep(t *testing.T) {
	d := &Delta{Version: 12, Prev: 10}
	for cache, want := range map[uint64]Step{0: StepCatchUp, 9: StepCatchUp, 10: StepApply, 11: StepCatchUp, 12: StepSkip, 13: StepSkip} {
		if got := d.Step(cache); got != want {
			t.Errorf("Step(%d) of %d→%d = %s, want %s", cache, d.Prev, d.Version, got, want)
		}
	}
}

func TestCredentialHash(t *testing.T) {
	tests := []struct{ key, id, want string }{
		// RFC 4231 test case 2, HMAC-SHA256 cut to 128 bits.
		{"Jefe", "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c7"},
		// openssl dgst -sha256 -hmac "varco test tenant key, 32 bytes!" <<< -n card:123:45678
		{string(testTenantKey), "card:123:45678", "ffa4752672b4392238830fc6fb603497"},
	}
	for _, tc := range tests {
		got := CredentialHash([]byte(tc.key), tc.id)
		if got.String() != tc.want {
			t.Errorf("CredentialHash(%q, %q) = %s, want %s", tc.key, tc.id, got, tc.want)
		}
		h := NewCredentialHasher([]byte(tc.key))
		for range 2 { // the second call proves Reset between uses
			if got := h.Hash([]byte(tc.id)); got.String() != tc.want {
				t.Errorf("CredentialHasher(%q).Hash(%q) = %s, want %s", tc.key, tc.id, got, tc.want)
			}
		}
		parsed, err := ParseCredentialKey(tc.want)
		if err != nil || parsed != got {
			t.Errorf("ParseCredentialKey(%s) = %s, %v", tc.want, parsed, err)
		}
	}
	if CredentialHash([]byte("tenant-a"), "pin:1234") == CredentialHash([]byte("tenant-b"), "pin:1234") {
		t.Error("the same credential has the same key in two tenants")
	}
	for _, bad := range []string{"", "ffa4", strings.Repeat("g", 32), strings.Repeat("a", 34)} {
		if _, err := ParseCredentialKey(bad); err == nil {
			t.Errorf("ParseCredentialKey(%q) accepted", bad)
		}
	}
	// Text marshalling makes JSON (the cloud API, logs) readable.
	k := key("card:123:45678")
	j, err := json.Marshal(struct{ K CredentialKey }{k})
	if err != nil || string(j) != `{"K":"ffa4752672b4392238830fc6fb603497"}` {
		t.Errorf("json = %s, %v", j, err)
	}
	var back struct{ K CredentialKey }
	if err := json.Unmarshal(j, &back); err != nil || back.K != k {
		t.Errorf("json back = %s, %v", back.K, err)
	}
}

func TestEnums(t *testing.T) {
	s := DeviceSetOf(DeviceEntrance, DeviceSpa)
	if !s.Has(DeviceSpa) || s.Has(DeviceExit) || s.Has(200) {
		t.Errorf("Has on %s", s)
	}
	if got := s.String(); got != "entrance|spa" {
		t.Errorf("String = %q", got)
	}
	if got := (DeviceSet(0)).String(); got != "none" {
		t.Errorf("empty set String = %q", got)
	}
	if got := AllDevices.String(); got != "entrance|exit|door|spa|pool|locker" {
		t.Errorf("AllDevices = %q", got)
	}
	for d := DeviceEntrance; d.Valid(); d++ {
		if p, err := ParseDeviceType(d.String()); err != nil || p != d {
			t.Errorf("ParseDeviceType(%s) = %v, %v", d, p, err)
		}
	}
	if _, err := ParseDeviceType("sauna"); err == nil {
		t.Error("ParseDeviceType(sauna) accepted")
	}
	for _, s := range []string{Kind(99).String(), DeviceType(99).String(), AccessMode(9).String(), EventKind(99).String(),
		Decision(9).String(), Reason(99).String(), CommandOp(9).String(), Step(9).String(), TopicKind(99).String(), Side(9).String()} {
		if !strings.Contains(s, "(9") {
			t.Errorf("unknown value String = %q", s)
		}
	}
	if w := (Window{From: 10, Until: 20}); !w.Contains(10) || w.Contains(20) || w.Contains(9) || !(Window{}).Contains(0) {
		t.Error("Window.Contains")
	}
	if ts := TimestampOf(t0.Time()); ts != t0 || t0.String() != "2026-11-25T09:00:00.000Z" || Timestamp(0).String() != "unset" {
		t.Errorf("Timestamp round trip %d, %s", ts, t0)
	}
}
