package sync

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Fixed inputs, so that every golden file is reproducible.
var (
	testTenantKey = []byte("varco test tenant key, 32 bytes!")
	t0            = TimestampOf(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	// testSigner is an Ed25519 key from a fixed seed: Ed25519 signatures are
	// deterministic, so signed golden files are too.
	testSigner = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
)

func key(canonical string) CredentialKey { return CredentialHash(testTenantKey, canonical) }

func day(n int) Timestamp { return t0 + Timestamp(n)*24*3600*1000 }

// goldenCases is the table that drives the golden encode and decode tests,
// the round trips and the fuzzer's seeds: at least one message of every kind.
var goldenCases = []struct {
	name string
	msg  Message
	sign bool // sign with testSigner as key "cloud-1"
}{
	{name: "delta", msg: &Delta{
		Header:  Header{Tenant: "fitclub", Site: "7", Seq: 42, Time: t0},
		Version: 101,
		Prev:    100,
		Upserts: []Record{
			{
				Member: 1001,
				Credentials: []Credential{
					{Key: key("card:123:45678")},
					{Key: key("pin:1234"), Valid: Window{Until: day(30)}},
				},
				Valid:   []Window{{From: day(-200), Until: day(165)}},
				Devices: DeviceSetOf(DeviceEntrance, DeviceExit),
				Actions: []Action{{
					ID: 555, Mode: AccessMessageBlock, Devices: DeviceSetOf(DeviceEntrance),
					Text: "Please see reception\nMedical certificate expired", Priority: 10,
				}},
				Notices: []Notice{{Text: "Happy birthday Anna!", Priority: 1, Valid: Window{From: t0, Until: day(1)}}},
			},
			{
				Member:      1002,
				Credentials: []Credential{{Key: key("card:123:45679")}},
				Valid:       []Window{{}},
				Sites:       []string{"7", "9"},
				Devices:     AllDevices,
				Suspended:   true,
			},
		},
		Deletes: []MemberRef{900},
	}},
	{name: "delta-policy", msg: &Delta{
		Header:  Header{Tenant: "fitclub", Site: "7", Seq: 43, Time: t0},
		Version: 102,
		Prev:    101,
		Policy: &OfflinePolicy{Limits: []OfflineLimit{
			{Rule: RuleBlock, Mode: FailClosed, After: 24 * 3600},
			{Rule: RuleMembership, Mode: FailOpen, After: 72 * 3600},
		}},
	}, sign: true},
	{name: "delta-catchup", msg: &Delta{
		Header:  Header{Tenant: "fitclub", Site: "7", Edge: "gate-1", Time: t0},
		Version: 101,
		Prev:    99,
		Deletes: []MemberRef{900, 901},
	}},
	{name: "snapshot", msg: &Snapshot{
		Header:  Header{Tenant: "fitclub", Site: "7", Edge: "gate-1", Time: t0},
		ID:      77,
		Version: 101,
		Chunk:   1,
		Chunks:  3,
		Records: []Record{{
			Member:      1003,
			Credentials: []Credential{{Key: key("card:0:1")}},
			Valid:       []Window{{From: day(-10)}},
			Devices:     DeviceSetOf(DeviceEntrance, DeviceExit, DeviceSpa),
			Actions:     []Action{{ID: 556, Mode: AccessMessage, Devices: AllDevices, Text: "Renewal: talk to us at the desk"}},
		}},
	}},
	{name: "catchup", msg: &CatchUp{
		Header: Header{Tenant: "fitclub", Site: "7", Edge: "gate-1", Seq: 3, Time: t0},
		From:   99,
	}},
	{name: "catchup-full", msg: &CatchUp{
		Header: Header{Tenant: "fitclub", Site: "7", Edge: "gate-1", Time: t0},
		From:   0,
		Full:   true,
	}},
	{name: "birth", msg: &Birth{
		Header:       Header{Tenant: "fitclub", Site: "7", Edge: "gate-1", Seq: 1, Time: t0},
		Boot:         0x5eed0fb007,
		CacheVersion: 99,
		Software:     "v0.1.0",
		LastSeq:      12345,
		Readers: []Reader{
			{ID: "in-1", Device: DeviceEntrance, Online: true, Rows: 2, Cols: 16},
			{ID: "out-1", Device: DeviceExit},
		},
	}},
	{name: "status-online", msg: &Status{
		Header:       Header{Tenant: "fitclub", Site: "7", Edge: "gate-1", Seq: 2, Time: t0},
		Online:       true,
		Boot:         0x5eed0fb007,
		CacheVersion: 99,
	}},
	{name: "status-will", msg: &Status{
		Header: Header{Tenant: "fitclub", Site: "7", Edge: "gate-1", Time: t0},
		Boot:   0x5eed0fb007,
	}},
	{name: "events", msg: &Events{
		Header: Header{Tenant: "fitclub", Site: "7", Edge: "gate-1", Seq: 4, Time: t0 + 5000},
		Boot:   0x5eed0fb007,
		Events: []Event{
			{Seq: 12346, Time: t0 + 1000, Kind: EventPassage, Reader: "in-1", Credential: key("card:123:45679"), Member: 1002, Decision: DecisionGrant},
			{Seq: 12347, Time: t0 + 2000, Kind: EventPassage, Reader: "in-1", Credential: key("card:123:45678"), Member: 1001, Decision: DecisionDeny, Reason: ReasonBlocked, Action: 555},
			{Seq: 12348, Time: t0 + 2500, Kind: EventPassage, Reader: "in-1", Credential: key("card:999:1"), Decision: DecisionDeny, Reason: ReasonUnknownCredential},
			{Seq: 12349, Time: t0 + 3000, Kind: EventReaderOffline, Reader: "out-1"},
			{Seq: 12350, Time: t0 + 4000, Kind: EventRemoteOpen, Reader: "in-1", Command: 31},
		},
	}},
	{name: "ack", msg: &Ack{
		Header: Header{Tenant: "fitclub", Edge: "gate-1", Time: t0 + 6000},
		Boot:   0x5eed0fb007,
		Seq:    12350,
	}},
	{name: "command-open", msg: &Command{
		Header:  Header{Tenant: "fitclub", Edge: "gate-1", Time: t0},
		ID:      31,
		Op:      CmdOpen,
		Reader:  "in-1",
		Expires: t0 + 30000,
	}},
	{name: "command-show", msg: &Command{
		Header:  Header{Tenant: "fitclub", Site: "7", Edge: "gate-1", Time: t0},
		ID:      32,
		Op:      CmdShow,
		Reader:  "in-1",
		Text:    "Buongiorno! Lezione di spinning alle 10:00",
		Seconds: 8,
		Expires: t0 + 60000,
	}},
	{name: "command-resync", msg: &Command{
		Header:  Header{Tenant: "fitclub", Edge: "gate-1", Time: t0},
		ID:      33,
		Op:      CmdResync,
		Expires: t0 + 3600000,
	}},
	{name: "delta-signed", sign: true, msg: &Delta{
		Header:  Header{Tenant: "fitclub", Site: "7", Seq: 43, Time: t0 + 1},
		Version: 102,
		Prev:    101,
		Upserts: []Record{{Member: 1001, Credentials: []Credential{{Key: key("card:123:45678")}}, Valid: []Window{{From: day(-200), Until: day(165)}}, Devices: DeviceSetOf(DeviceEntrance, DeviceExit)}},
	}},
}

// encodeCase encodes a golden case as a publisher would.
func encodeCase(t testing.TB, msg Message, sign bool) []byte {
	t.Helper()
	env, err := Seal(msg)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if sign {
		if err := env.Sign("cloud-1", testSigner); err != nil {
			t.Fatalf("Sign: %v", err)
		}
	}
	b, err := env.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	return b
}

// describe renders an encoded message for a human: the envelope and the
// payload in CBOR diagnostic notation (RFC 8949 §8), then a hex dump.
func describe(name string, b []byte) string {
	var sb strings.Builder
	env, err := UnmarshalEnvelope(b)
	if err != nil {
		return err.Error()
	}
	topic := "?"
	if msg, err := env.Open(); err == nil {
		if tp, err := TopicFor(msg); err == nil {
			topic = tp.String()
		}
	}
	envDiag, _ := cbor.Diagnose(b)
	payloadDiag, _ := cbor.Diagnose(env.Payload)
	fmt.Fprintf(&sb, "# %s: kind %s on %s\n", name, env.Kind, topic)
	fmt.Fprintf(&sb, "# envelope {1 version, 2 kind, 3 tenant, 4 site, 5 edge, 6 seq, 7 time, 8 payload, 9 key id, 10 sig}, %d bytes:\n", len(b))
	fmt.Fprintf(&sb, "%s\n", envDiag)
	fmt.Fprintf(&sb, "# payload [kind, body], %d bytes:\n", len(env.Payload))
	fmt.Fprintf(&sb, "%s\n", payloadDiag)
	fmt.Fprintf(&sb, "# hex:\n%s", hex.Dump(b))
	return sb.String()
}

// TestGolden encodes every case and compares with testdata/NAME.cbor byte for
// byte, and decodes the file and compares with the case. go test -update
// rewrites the files.
func TestGolden(t *testing.T) {
	seen := map[Kind]bool{}
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			seen[tc.msg.Kind()] = true
			got := encodeCase(t, tc.msg, tc.sign)
			binPath := filepath.Join("testdata", tc.name+".cbor")
			txtPath := filepath.Join("testdata", tc.name+".txt")
			txt := describe(tc.name, got)
			if *update {
				if err := os.WriteFile(binPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(txtPath, []byte(txt), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(binPath)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encoding differs from %s\ngot:\n%s\nwant:\n%s", binPath, hex.Dump(got), hex.Dump(want))
			}
			if wantTxt, err := os.ReadFile(txtPath); err != nil || string(wantTxt) != txt {
				t.Errorf("%s is stale (err %v); run go test -update", txtPath, err)
			}

			// Decode the golden bytes, not ours: the file is the contract.
			msg, err := Unmarshal(want)
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", binPath, err)
			}
			if !reflect.DeepEqual(msg, tc.msg) {
				t.Errorf("Unmarshal(%s) =\n%#v\nwant\n%#v", binPath, msg, tc.msg)
			}
			if tc.sign {
				env, err := UnmarshalEnvelope(want)
				if err != nil {
					t.Fatal(err)
				}
				if err := env.Verify(testSigner.Public().(ed25519.PublicKey)); err != nil {
					t.Errorf("Verify: %v", err)
				}
			}
			topic, err := TopicFor(msg)
			if err != nil {
				t.Fatalf("TopicFor: %v", err)
			}
			parsed, err := ParseTopic(topic.String())
			if err != nil || parsed != topic {
				t.Fatalf("ParseTopic(%s) = %v, %v", topic, parsed, err)
			}
			if err := parsed.Check(msg); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
	for k := KindDelta; k.Valid(); k++ {
		if !seen[k] {
			t.Errorf("no golden case of kind %s", k)
		}
	}
}
