package osdp

// NextSeq returns the sequence number that follows n on a running link:
// 0→1→2→3→1→…. Zero is never next; a CP sends it only to (re)start a link.
func NextSeq(n uint8) uint8 {
	if n >= 3 {
		return 1
	}
	return n + 1
}

// CPSequence numbers the commands a CP sends to one PD. The zero value is a
// link that has not started: the first command carries 0, which tells the PD
// to reset its own sequence (and drop a secure channel).
type CPSequence struct {
	last    uint8
	started bool
}

// Next returns the number for a new command. A retry of a command that got
// no reply is sent again with the same number, not with a new one, so that
// the PD can answer with its cached reply instead of acting twice.
func (s *CPSequence) Next() uint8 {
	if !s.started {
		s.last, s.started = 0, true
	} else {
		s.last = NextSeq(s.last)
	}
	return s.last
}

// Reset restarts the link, so that the next command carries 0. Call it when
// the PD went offline (no reply after the retries), answered NAK 4, or its
// secure channel must be set up again.
func (s *CPSequence) Reset() { *s = CPSequence{} }

// SeqAction is what a PD does with a command, judged by its sequence number.
type SeqAction uint8

// Sequence actions.
const (
	// SeqProcess: a new command (sequence 0 also restarts the link).
	// Process it, then Remember the encoded reply.
	SeqProcess SeqAction = iota
	// SeqRepeat: the CP retries the last command because it missed the
	// reply. Send LastReply again, byte for byte, without acting twice.
	SeqRepeat
	// SeqError: out of order. Answer NAK 4 (NakSequence), and expect the
	// CP to restart at 0.
	SeqError
)

// PDSequence checks the sequence numbers a PD receives from its CP and keeps
// the last reply for retransmission. The zero value is a PD that has not yet
// heard from the CP: only sequence 0 is accepted until then.
type PDSequence struct {
	last    uint8  // sequence number of the last command processed
	code    byte   // its command code
	started bool   // a command with sequence 0 has been processed
	reply   []byte // the encoded reply to it, if remembered
}

// Check judges the command f by its sequence number (and, for a retry, its
// code: a "retry" of a different command is out of order). Sequence 0 always
// restarts the link, so a retried 0 is processed again, not repeated.
func (s *PDSequence) Check(f *Frame) SeqAction {
	switch {
	case f.Seq == 0:
		s.last, s.code, s.started, s.reply = 0, f.Code, true, s.reply[:0]
		return SeqProcess
	case !s.started:
		return SeqError
	case f.Seq == s.last && f.Code == s.code && len(s.reply) > 0:
		return SeqRepeat
	case f.Seq == NextSeq(s.last):
		s.last, s.code, s.reply = f.Seq, f.Code, s.reply[:0]
		return SeqProcess
	}
	return SeqError
}

// Remember keeps a copy of the encoded reply to the command last passed to
// Check with SeqProcess, for LastReply. The copy reuses its buffer, so a PD
// that remembers every reply allocates only when a reply is its longest yet.
func (s *PDSequence) Remember(reply []byte) { s.reply = append(s.reply[:0], reply...) }

// LastReply returns the remembered reply, to send again on SeqRepeat. It is
// valid until the next Check or Remember.
func (s *PDSequence) LastReply() []byte { return s.reply }

// Reset forgets the link, as after a power cycle: only sequence 0 is
// accepted next.
func (s *PDSequence) Reset() { s.last, s.code, s.started, s.reply = 0, 0, false, s.reply[:0] }
