package sync

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzUnmarshal feeds Unmarshal arbitrary bytes, seeded with the golden files
// and a few hostile shapes. Unmarshal must not panic, must classify every
// error, and a message it accepts must marshal again, decode to the same
// message, and marshal to the same bytes a second time.
func FuzzUnmarshal(f *testing.F) {
	for _, tc := range goldenCases {
		f.Add(readGolden(f, tc.name))
	}
	f.Add([]byte{})
	f.Add([]byte{0xa0})
	f.Add(append(bytes.Repeat([]byte{0x81}, 100), 0))
	f.Add(enc(f, envelopeMap(f, []byte{0x82, 0x01, 0xa1, 0x04, 0x9b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})))
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := Unmarshal(b)
		if err != nil {
			if msg != nil {
				t.Fatal("message and error")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		topic, err := TopicFor(msg)
		if err != nil {
			t.Fatalf("accepted %s has no topic: %v", msg.Kind(), err)
		}
		if err := topic.Check(msg); err != nil {
			t.Fatalf("accepted %s does not fit its topic: %v", msg.Kind(), err)
		}
		b2, err := Marshal(msg)
		if errors.Is(err, ErrTooLarge) {
			return // re-encoding may add required zero fields the input left out
		}
		if err != nil {
			t.Fatalf("accepted %s does not marshal: %v", msg.Kind(), err)
		}
		msg2, err := Unmarshal(b2)
		if err != nil {
			t.Fatalf("re-marshaled %s does not unmarshal: %v", msg.Kind(), err)
		}
		b3, err := Marshal(msg2)
		if err != nil {
			t.Fatalf("second marshal: %v", err)
		}
		if !bytes.Equal(b2, b3) {
			t.Fatalf("re-marshal is not stable:\n%x\n%x", b2, b3)
		}
	})
}
