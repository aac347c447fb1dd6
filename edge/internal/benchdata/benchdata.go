// Package benchdata makes the members of a large club for benchmarks: the
// same members as sync records (the decision benchmark) and as NDJSON lines
// (the import benchmark). Member i has one card; every tenth has an open
// message+block CRM action for every device type (100k of 1M), every
// twentieth from the fifth a message action, every twenty-fifth a notice.
package benchdata

import (
	"cmp"
	"fmt"
	"os"
	"strconv"
	"time"

	vsync "varco.dev/protocol/sync"
)

// TenantKey hashes the cards.
var TenantKey = []byte("varco-bench-tenant-key-32-bytes!")

// Now is inside every member's validity window.
var Now = vsync.TimestampOf(time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC))

var (
	from  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	until = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
)

const blockText = "Please see reception: medical certificate expired"

// Members is how many members a benchmark makes: $VARCO_BENCH_MEMBERS, or
// def.
func Members(def int) int {
	n, err := strconv.Atoi(os.Getenv("VARCO_BENCH_MEMBERS"))
	if err != nil || n <= 0 {
		return def
	}
	return n
}

// CardID is member i's card.
func CardID(i int) string { return fmt.Sprintf("card:%d:%d", 100+i>>16, i&0xffff) }

// Key is the credential key of member i's card.
func Key(i int) vsync.CredentialKey { return vsync.CredentialHash(TenantKey, CardID(i)) }

// Record is member i's record, with key its card's key (Key(i)).
func Record(i int, key vsync.CredentialKey) vsync.Record {
	r := vsync.Record{
		Member:      vsync.MemberRef(100_000 + i),
		Credentials: []vsync.Credential{{Key: key}},
		Valid:       []vsync.Window{{From: vsync.TimestampOf(from), Until: vsync.TimestampOf(until)}},
		Devices:     vsync.DeviceSetOf(vsync.DeviceEntrance, vsync.DeviceExit),
	}
	switch {
	case i%10 == 0:
		r.Actions = []vsync.Action{{ID: uint64(i + 1), Mode: vsync.AccessMessageBlock, Devices: vsync.AllDevices, Text: blockText, Priority: 10}}
	case i%20 == 5:
		r.Actions = []vsync.Action{{ID: uint64(i + 1), Mode: vsync.AccessMessage, Devices: vsync.AllDevices, Text: "Renewal talk with Marco", Priority: 5}}
	}
	if i%25 == 3 {
		r.Notices = []vsync.Notice{{Text: "Your membership ends in 5 days", Priority: 1}}
	}
	return r
}

// Line is member i's record as an NDJSON line, newline included.
func Line(b []byte, i int) []byte {
	b = fmt.Appendf(b, `{"member":%d,"credentials":["%s"],"valid":[{"from":"%s","until":"%s"}],"devices":["entrance","exit"]`,
		100_000+i, CardID(i), from.Format(time.RFC3339), until.Format(time.RFC3339))
	switch {
	case i%10 == 0:
		b = fmt.Appendf(b, `,"actions":[{"id":%d,"mode":"message_block","text":"%s","priority":10}]`, i+1, blockText)
	case i%20 == 5:
		b = fmt.Appendf(b, `,"actions":[{"id":%d,"mode":"message","text":"Renewal talk with Marco","priority":5}]`, i+1)
	}
	if i%25 == 3 {
		b = append(b, `,"notices":[{"text":"Your membership ends in 5 days","priority":1}]`...)
	}
	return append(b, "}\n"...)
}

// Pick returns n keys to present, in order: cards of known at random, and
// unknown cards for a fraction unknown of them.
func Pick(known []vsync.CredentialKey, n int, unknown float64, seed uint64) []vsync.CredentialKey {
	keys := make([]vsync.CredentialKey, n)
	x := cmp.Or(seed, 1)
	for i := range keys {
		x ^= x << 13 // xorshift: reproducible, no allocation
		x ^= x >> 7
		x ^= x << 17
		if float64(x%1000) < unknown*1000 {
			keys[i] = vsync.CredentialHash(TenantKey, fmt.Sprint("card:9:", x%100000))
			continue
		}
		keys[i] = known[x%uint64(len(known))]
	}
	return keys
}
