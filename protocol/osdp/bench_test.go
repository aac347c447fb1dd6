package osdp

import "testing"

// card26 is a 26-bit Wiegand read: even parity, facility 123, card 45678,
// odd parity, padded with zero bits to 4 bytes.
var card26 = &Raw{Reader: 0, Format: RawWiegand, Bits: 26, Data: []byte{0xBD, 0xD9, 0x37, 0x40}}

// seeReception is the text a blocked member sees on the reader.
var seeReception = &Text{Reader: 0, Command: TextTemporary, TempTime: 5, Row: 1, Column: 1, Text: "Please see reception"}

func BenchmarkRawReply(b *testing.B) {
	benchMessage(b, &Frame{Addr: 0x65, Seq: 2, CRC: true}, card26, new(Raw))
}

func BenchmarkTextCommand(b *testing.B) {
	benchMessage(b, &Frame{Addr: 0x65, Seq: 1, CRC: true, Mark: true}, seeReception, new(Text))
}

// benchMessage measures a full frame, CRC included, both ways: encoding
// into a reused buffer; decoding with a Decoder and the message type's
// UnmarshalData into a reused message (the path of a CP or PD read loop);
// and decoding with ParseFrame and the generic DecodeCommand/DecodeReply.
func benchMessage(b *testing.B, hdr *Frame, m Message, into interface{ UnmarshalData([]byte) error }) {
	frame, err := AppendMessage(nil, hdr, m)
	if err != nil {
		b.Fatal(err)
	}
	_, reply := m.(Reply)

	b.Run("Encode", func(b *testing.B) {
		buf := make([]byte, 0, 64)
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			buf, _ = AppendMessage(buf[:0], hdr, m)
		}
	})
	b.Run("Decode", func(b *testing.B) {
		accept := Commands
		if reply {
			accept = Replies
		}
		d := mustDecoder(b, DecoderConfig{Accept: accept})
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			for f, err := range d.Feed(frame) {
				if err != nil {
					b.Fatal(err)
				}
				if err := into.UnmarshalData(f.Data); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("DecodeGeneric", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			f, err := ParseFrame(frame)
			if err != nil {
				b.Fatal(err)
			}
			if reply {
				_, err = DecodeReply(f.Code, f.Data)
			} else {
				_, err = DecodeCommand(f.Code, f.Data)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
