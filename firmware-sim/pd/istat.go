package pd

import "varco.dev/protocol/osdp"

// istat answers osdp_ISTAT with the state of each input, or NAK 3 when the
// device declares none.
func (d *Device) istat() osdp.Reply {
	if len(d.inputs) == 0 {
		return nak(osdp.NakUnknownCommand)
	}
	return osdp.IStatR(append([]byte(nil), d.inputs...))
}
