package pd

import "varco.dev/protocol/osdp"

// acuRxSize takes note of the longest frame the CP can receive. The
// device's replies are all far shorter than the 128 bytes every CP takes.
func (d *Device) acuRxSize(c osdp.ACURxSize) osdp.Reply {
	d.acuRx = c.Size
	return osdp.Ack{}
}
