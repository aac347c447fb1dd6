package osdp

import (
	"bytes"
	"testing"
)

func TestNextSeq(t *testing.T) {
	for n, want := range []uint8{1, 2, 3, 1} {
		if got := NextSeq(uint8(n)); got != want {
			t.Errorf("NextSeq(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestCPSequence(t *testing.T) {
	var s CPSequence
	steps := []struct {
		reset bool
		want  uint8
	}{
		{want: 0}, // a new link starts at 0
		{want: 1},
		{want: 2},
		{want: 3},
		{want: 1}, // 0 is not part of the cycle
		{want: 2},
		{reset: true}, // the PD went offline
		{want: 0},
		{want: 1},
	}
	for i, st := range steps {
		if st.reset {
			s.Reset()
			continue
		}
		if got := s.Next(); got != st.want {
			t.Fatalf("step %d: Next() = %d, want %d", i, got, st.want)
		}
	}
}

func TestPDSequence(t *testing.T) {
	var s PDSequence
	steps := []struct {
		name     string
		reset    bool
		seq      uint8
		code     byte
		want     SeqAction
		remember string // reply to remember after SeqProcess
		resend   string // LastReply expected on SeqRepeat
	}{
		{name: "not started", seq: 1, code: CmdPoll, want: SeqError},
		{name: "start", seq: 0, code: CmdPoll, want: SeqProcess, remember: "ack0"},
		{name: "restart", seq: 0, code: CmdPoll, want: SeqProcess, remember: "ack0b"},
		{name: "next", seq: 1, code: CmdPoll, want: SeqProcess, remember: "ack1"},
		{name: "retry", seq: 1, code: CmdPoll, want: SeqRepeat, resend: "ack1"},
		{name: "retry again", seq: 1, code: CmdPoll, want: SeqRepeat, resend: "ack1"},
		{name: "same number, other command", seq: 1, code: CmdLED, want: SeqError},
		{name: "skipped a number", seq: 3, code: CmdPoll, want: SeqError},
		{name: "2", seq: 2, code: CmdLED, want: SeqProcess, remember: "ack2"},
		{name: "3", seq: 3, code: CmdPoll, want: SeqProcess, remember: "raw3"},
		{name: "wraps to 1", seq: 1, code: CmdPoll, want: SeqProcess},
		{name: "retry without a remembered reply", seq: 1, code: CmdPoll, want: SeqError},
		{name: "power cycle", reset: true},
		{name: "after reset", seq: 2, code: CmdPoll, want: SeqError},
		{name: "restart after reset", seq: 0, code: CmdID, want: SeqProcess, remember: "pdid"},
		{name: "retry of the start", seq: 0, code: CmdID, want: SeqProcess},
	}
	for _, st := range steps {
		if st.reset {
			s.Reset()
			continue
		}
		got := s.Check(&Frame{Seq: st.seq, Code: st.code})
		if got != st.want {
			t.Fatalf("%s: Check(seq %d) = %d, want %d", st.name, st.seq, got, st.want)
		}
		switch {
		case got == SeqProcess && st.remember != "":
			s.Remember([]byte(st.remember))
		case got == SeqRepeat && !bytes.Equal(s.LastReply(), []byte(st.resend)):
			t.Fatalf("%s: LastReply() = %q, want %q", st.name, s.LastReply(), st.resend)
		}
	}
}

// TestCPAndPD runs a CP and a PD sequence against each other with lost
// replies.
func TestCPAndPD(t *testing.T) {
	var cp CPSequence
	var pd PDSequence
	for i := range 20 {
		f := Frame{Seq: cp.Next(), Code: CmdPoll}
		if got := pd.Check(&f); got != SeqProcess {
			t.Fatalf("command %d: %d, want SeqProcess", i, got)
		}
		reply, _ := AppendMessage(nil, &Frame{Seq: f.Seq}, Ack{})
		pd.Remember(reply)
		if i%3 == 1 { // the reply was lost: the CP retries with the same number
			if got := pd.Check(&f); got != SeqRepeat || !bytes.Equal(pd.LastReply(), reply) {
				t.Fatalf("retry %d: %d, want SeqRepeat with the same reply", i, got)
			}
		}
	}
}
