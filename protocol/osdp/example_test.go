package osdp_test

import (
	"fmt"

	"varco.dev/protocol/osdp"
)

// A CP asks a PD to show a message and the PD answers, each side decoding
// the other's bytes as they arrive.
func Example() {
	// CP (varco-edge): number the command and encode it.
	var cpSeq osdp.CPSequence
	cmd, err := osdp.AppendMessage(nil, &osdp.Frame{Addr: 0x65, Seq: cpSeq.Next(), CRC: true}, osdp.Text{
		Command: osdp.TextTemporary, TempTime: 5, Row: 1, Column: 1, Text: "Please see reception",
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("CP → % X\n", cmd)

	// PD (varco-sim): the bytes arrive in two reads.
	pd, _ := osdp.NewDecoder(osdp.DecoderConfig{Accept: osdp.Commands})
	var pdSeq osdp.PDSequence
	var out []byte // what the PD writes back
	for _, read := range [][]byte{cmd[:9], cmd[9:]} {
		for f, err := range pd.Feed(read) {
			if err != nil {
				continue // log it; a frame with a bad CRC gets no answer
			}
			hdr := osdp.Frame{Addr: f.Addr, Seq: f.Seq, CRC: f.CRC, Mark: f.Mark}
			switch pdSeq.Check(&f) {
			case osdp.SeqRepeat:
				out = pdSeq.LastReply()
				continue
			case osdp.SeqError:
				out, _ = osdp.AppendMessage(out[:0], &hdr, osdp.Nak{Reason: osdp.NakSequence})
				continue
			}
			var answer osdp.Reply = osdp.Ack{}
			c, err := osdp.DecodeCommand(f.Code, f.Data)
			switch c := c.(type) {
			case nil:
				answer = osdp.Nak{Reason: osdp.NakFor(err)} // NAK 2 or 3
			case osdp.Text:
				fmt.Printf("PD shows %q on row %d for %d s\n", c.Text, c.Row, c.TempTime)
			}
			out, _ = osdp.AppendMessage(out[:0], &hdr, answer)
			pdSeq.Remember(out)
		}
	}
	fmt.Printf("PD → % X\n", out)

	// CP: decode the reply.
	cp, _ := osdp.NewDecoder(osdp.DecoderConfig{Accept: osdp.Replies})
	for f, err := range cp.Feed(out) {
		if err != nil {
			continue
		}
		r, err := osdp.DecodeReply(f.Code, f.Data)
		fmt.Printf("CP got %T from 0x%02X, sequence %d, error %v\n", r, f.Addr, f.Seq, err)
	}
	// Output:
	// CP → 53 65 22 00 04 6B 00 03 05 01 01 14 50 6C 65 61 73 65 20 73 65 65 20 72 65 63 65 70 74 69 6F 6E 65 73
	// PD shows "Please see reception" on row 1 for 5 s
	// PD → 53 E5 08 00 04 40 D2 96
	// CP got osdp.Ack from 0x65, sequence 0, error <nil>
}
