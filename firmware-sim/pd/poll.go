package pd

import "varco.dev/protocol/osdp"

// poll answers osdp_POLL with the oldest queued event (RAW, KEYPAD or
// ISTATR), or ACK when there is none.
func (d *Device) poll() osdp.Reply {
	if len(d.events) == 0 {
		return osdp.Ack{}
	}
	ev := d.events[0]
	d.events = d.events[1:]
	return ev
}
