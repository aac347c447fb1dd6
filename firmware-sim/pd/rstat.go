package pd

import "varco.dev/protocol/osdp"

// rstat answers osdp_RSTAT: the one reader of the device is connected and
// not tampered with.
func (d *Device) rstat() osdp.Reply { return osdp.RStatR{0} }
