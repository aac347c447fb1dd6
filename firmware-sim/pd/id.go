package pd

import "varco.dev/protocol/osdp"

// id answers osdp_ID with the device's identification. The reply type byte
// is ignored: 0 (the standard PD ID block) is the only one defined.
func (d *Device) id() osdp.Reply {
	c := d.cfg
	return osdp.PDID{
		Vendor: c.Vendor, Model: c.Model, Version: c.Version, Serial: c.Serial,
		FirmwareMajor: c.Firmware[0], FirmwareMinor: c.Firmware[1], FirmwareBuild: c.Firmware[2],
	}
}
