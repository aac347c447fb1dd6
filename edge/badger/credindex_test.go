package badger

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	vsync "varco.dev/protocol/sync"
)

// TestCredIndex checks the table against a Go map through random sets and
// deletes, with keys drawn from a small set of hashes so that probe runs are
// long and wrap around the end of the table.
func TestCredIndex(t *testing.T) {
	for _, hashes := range []uint64{5, 64, 1 << 62} {
		rng := rand.New(rand.NewPCG(1, hashes))
		x := newCredIndex(0)
		want := map[vsync.CredentialKey]ref{}
		key := func() vsync.CredentialKey {
			var k vsync.CredentialKey
			h := rng.Uint64N(hashes) * (^uint64(0) / hashes) // spread over the whole range, wrap included
			binary.LittleEndian.PutUint64(k[:8], h)
			binary.LittleEndian.PutUint64(k[8:], rng.Uint64N(40)+1)
			return k
		}
		for op := range 5000 {
			k := key()
			if rng.IntN(3) == 0 {
				x.delete(k)
				delete(want, k)
			} else {
				x.set(k, ref(op))
				want[k] = ref(op)
			}
			if x.len() != len(want) {
				t.Fatalf("hashes %d op %d: len %d, want %d", hashes, op, x.len(), len(want))
			}
			if op%50 == 0 {
				for k, r := range want {
					if got, ok := x.get(k); !ok || got != r {
						t.Fatalf("hashes %d op %d: get(%x) = %d %v, want %d", hashes, op, k[:8], got, ok, r)
					}
				}
				k := key()
				if _, in := want[k]; !in {
					if _, ok := x.get(k); ok {
						t.Fatalf("hashes %d op %d: found a key never set or deleted", hashes, op)
					}
				}
			}
		}
		x.fit()
		n := 0
		for _, s := range x.slots {
			if !s.key.IsZero() {
				n++
				if r, ok := want[s.key]; !ok || r != s.ref {
					t.Fatalf("hashes %d: slot %x holds a deleted key", hashes, s.key[:8])
				}
			}
		}
		if n != len(want) {
			t.Fatalf("hashes %d: %d keys in slots, want %d", hashes, n, len(want))
		}
	}
}
