package sync

import (
	"fmt"
	"testing"
)

// benchDelta is a realistic delta of n member records: two credentials each
// (a card and a PIN), one membership window, entrance and exit, and a blocking
// CRM action with its text on every fifth member.
func benchDelta(n int) *Delta {
	d := &Delta{Header: Header{Tenant: "fitclub", Site: "7", Seq: 1, Time: t0}, Version: 1001, Prev: 1000}
	for i := range n {
		r := Record{
			Member: MemberRef(100000 + i),
			Credentials: []Credential{
				{Key: key(fmt.Sprintf("card:123:%d", 40000+i))},
				{Key: key(fmt.Sprintf("pin:%06d", i))},
			},
			Valid:   []Window{{From: day(-100), Until: day(265)}},
			Devices: DeviceSetOf(DeviceEntrance, DeviceExit),
		}
		if i%5 == 0 {
			r.Actions = []Action{{ID: uint64(7000 + i), Mode: AccessMessageBlock, Devices: AllDevices,
				Text: "Please see reception:\nmedical certificate expired", Priority: 10}}
		}
		d.Upserts = append(d.Upserts, r)
	}
	return d
}

func BenchmarkMarshalDelta100(b *testing.B) {
	d := benchDelta(100)
	var size int
	b.ReportAllocs()
	for b.Loop() {
		out, err := Marshal(d)
		if err != nil {
			b.Fatal(err)
		}
		size = len(out)
	}
	b.ReportMetric(float64(size), "bytes/msg")
}

func BenchmarkUnmarshalDelta100(b *testing.B) {
	in, err := Marshal(benchDelta(100))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unmarshal(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCredentialHash(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		CredentialHash(testTenantKey, "card:123:45678")
	}
}

func BenchmarkCredentialHasher(b *testing.B) {
	b.ReportAllocs()
	h := NewCredentialHasher(testTenantKey)
	id := []byte("card:123:45678")
	for b.Loop() {
		h.Hash(id)
	}
}
