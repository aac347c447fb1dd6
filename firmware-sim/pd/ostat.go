package pd

import (
	"time"

	"varco.dev/protocol/osdp"
)

// ostat answers osdp_OSTAT with the state of each output, or NAK 3 when the
// device declares none.
func (d *Device) ostat(now time.Time) osdp.Reply {
	if len(d.outputs) == 0 {
		return nak(osdp.NakUnknownCommand)
	}
	r := make(osdp.OStatR, len(d.outputs))
	for i := range d.outputs {
		r[i] = b2u(d.outputs[i].active(now))
	}
	return r
}
