package badger

import (
	"encoding/binary"
	"math/bits"

	vsync "varco.dev/protocol/sync"
)

// credIndex maps credential keys to refs: an open-addressing hash table with
// linear probing, 20 bytes a slot and no pointers, kept between 50% and 85%
// full: about 28 MB for a million keys, half of a Go map's. Keys are HMAC
// outputs, so their first 8 bytes are a uniform hash already. The zero key,
// which no record has (vsync.Record.Validate), marks an empty slot.
type credIndex struct {
	slots []slot
	n     int
}

type slot struct {
	key vsync.CredentialKey
	ref ref
}

const (
	maxLoad = 0.85
	minCap  = 16
)

func newCredIndex(hint int) *credIndex {
	return &credIndex{slots: make([]slot, max(minCap, int(float64(hint)/0.7)))}
}

// home is the slot where a search for k starts: its hash scaled to the
// table (multiply and keep the high word), which needs no power-of-two size.
func (x *credIndex) home(k *vsync.CredentialKey) int {
	hi, _ := bits.Mul64(binary.LittleEndian.Uint64(k[:8]), uint64(len(x.slots)))
	return int(hi)
}

// find returns the slot of k, or the empty slot where it would go.
func (x *credIndex) find(k vsync.CredentialKey) (int, bool) {
	for i := x.home(&k); ; {
		switch s := &x.slots[i]; {
		case s.key == k:
			return i, true
		case s.key.IsZero():
			return i, false
		}
		if i++; i == len(x.slots) {
			i = 0
		}
	}
}

func (x *credIndex) get(k vsync.CredentialKey) (ref, bool) {
	i, ok := x.find(k)
	return x.slots[i].ref, ok
}

func (x *credIndex) set(k vsync.CredentialKey, r ref) {
	i, ok := x.find(k)
	x.slots[i] = slot{k, r}
	if ok {
		return
	}
	if x.n++; float64(x.n) > maxLoad*float64(len(x.slots)) {
		x.resize(int(float64(x.n) / 0.6))
	}
}

func (x *credIndex) resize(n int) {
	old := x.slots
	x.slots = make([]slot, max(minCap, n))
	for _, s := range old {
		if !s.key.IsZero() {
			j, _ := x.find(s.key)
			x.slots[j] = s
		}
	}
}

// delete removes k, shifting back the entries after it that probed past
// its slot, so that no search stops early at the hole.
func (x *credIndex) delete(k vsync.CredentialKey) {
	i, ok := x.find(k)
	if !ok {
		return
	}
	x.n--
	for j := i; ; {
		x.slots[i] = slot{}
		for {
			if j++; j == len(x.slots) {
				j = 0
			}
			if x.slots[j].key.IsZero() {
				return
			}
			// The entry at j may fill the hole at i if its home is not in
			// the cyclic range (i, j].
			h := x.home(&x.slots[j].key)
			if i <= j && (h <= i || h > j) || i > j && h <= i && h > j {
				break
			}
		}
		x.slots[i] = x.slots[j]
		i = j
	}
}

func (x *credIndex) len() int { return x.n }

// fit shrinks a table that a large size hint left less than 70% full.
func (x *credIndex) fit() {
	if want := int(float64(x.n) / 0.75); float64(x.n) < 0.7*float64(len(x.slots)) && want > minCap {
		x.resize(want)
	}
}
