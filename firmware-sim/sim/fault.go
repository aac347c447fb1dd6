package sim

import (
	"fmt"
	"time"
)

// Fault is something that goes wrong between a reader and the wire.
type Fault uint8

// Faults.
const (
	// DropReply: the reader acts on the command, but its reply never
	// reaches the wire. The CP's retry gets the cached reply.
	DropReply Fault = iota
	// CorruptCheck: the last check byte (CRC or checksum) of the reply is
	// inverted.
	CorruptCheck
	// GarbleReply: one to three bytes of the reply are changed at random.
	GarbleReply
	numFaults
)

var faultNames = [numFaults]string{"drop", "corrupt", "garble"}

func (f Fault) String() string {
	if f < numFaults {
		return faultNames[f]
	}
	return fmt.Sprintf("Fault(%d)", uint8(f))
}

// ParseFault reads a fault by the name String gives it.
func ParseFault(s string) (Fault, error) {
	for f, name := range faultNames {
		if s == name {
			return Fault(f), nil
		}
	}
	return 0, fmt.Errorf("sim: unknown fault %q (want drop, corrupt or garble)", s)
}

// Inject makes fault f happen to the next n replies of the reader at addr,
// in addition to faults already pending. Each reply suffers at most one
// fault: drops first, then corruptions, then garbling.
func (s *Sim) Inject(addr int, f Fault, n int) error {
	if f >= numFaults || n < 0 {
		return fmt.Errorf("sim: inject %v %d times", f, n)
	}
	return s.with(addr, func(r *reader) { r.faults[f] += n })
}

// AnswerLate delays every reply of the reader at addr by d, from now on; 0
// restores prompt answers. A delay past the CP's reply timeout (200 ms)
// looks like a reader that answers too late.
func (s *Sim) AnswerLate(addr int, d time.Duration) error {
	return s.with(addr, func(r *reader) { r.late = max(d, 0) })
}

// applyFault applies the next pending fault to the reply b in place and
// reports whether the reply is to be dropped.
func (r *reader) applyFault(b []byte) (drop bool) {
	switch {
	case r.faults[DropReply] > 0:
		r.faults[DropReply]--
		return true
	case r.faults[CorruptCheck] > 0:
		r.faults[CorruptCheck]--
		b[len(b)-1] ^= 0xFF
	case r.faults[GarbleReply] > 0:
		r.faults[GarbleReply]--
		for range 1 + r.rand.IntN(3) {
			b[r.rand.IntN(len(b))] ^= byte(1 + r.rand.IntN(255))
		}
	}
	return false
}
