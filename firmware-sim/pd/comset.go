package pd

import "varco.dev/protocol/osdp"

// bauds are the rates a device accepts in osdp_COMSET.
var bauds = map[uint32]bool{9600: true, 19200: true, 38400: true, 57600: true, 115200: true, 230400: true}

// comsetReply answers osdp_COMSET with osdp_COM carrying the settings the
// device switches to once the reply is out. Settings it cannot take (an
// address of 0x7F or above, an unknown baud rate) are refused the way
// libosdp's PD refuses them: the COM reply carries the current settings.
func (d *Device) comsetReply(c osdp.ComSet) osdp.Reply {
	if c.Addr >= osdp.BroadcastAddr || !bauds[c.Baud] {
		return osdp.Com{Addr: d.addr, Baud: d.baud}
	}
	return osdp.Com(c)
}

// comset applies a COMSET after its reply has been encoded. On a
// pseudo-terminal the baud rate changes nothing but what the device
// reports.
func (d *Device) comset(c osdp.ComSet) {
	if c.Addr < osdp.BroadcastAddr && bauds[c.Baud] {
		d.addr, d.baud = c.Addr, c.Baud
	}
}
