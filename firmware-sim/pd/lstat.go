package pd

import "varco.dev/protocol/osdp"

// lstat answers osdp_LSTAT: the simulated enclosure is never tampered with
// and its power never fails (a power cut makes it silent instead).
func (d *Device) lstat() osdp.Reply { return osdp.LStatR{} }
