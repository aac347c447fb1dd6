package sim

import (
	"fmt"
	"strconv"
	"strings"

	"varco.dev/protocol/wiegand"
)

// ParseCard reads a card as the command line, scenarios and credential
// files write it, already split into fields:
//
//	H10301 123 4567     a format (H10301, H10306, Corp1000, H10304, H10302),
//	                    facility code and card number, parity computed
//	H10302 34359738367  a format without facility code, and the card number
//	26 0x1ABCDE         a bit count (1–64) and the bits as a number: 0x hex,
//	                    0b binary or decimal, first bit sent most significant
func ParseCard(fields []string) (wiegand.Frame, error) {
	var none wiegand.Frame
	if len(fields) == 2 {
		if n, err := strconv.Atoi(fields[0]); err == nil {
			return parseBits(n, fields[1])
		}
	}
	if len(fields) < 2 || len(fields) > 3 {
		return none, fmt.Errorf("want FORMAT [FACILITY] NUMBER or BITS VALUE, got %q", strings.Join(fields, " "))
	}
	format, err := wiegand.ParseFormat(fields[0])
	if err != nil || format == wiegand.Raw {
		return none, fmt.Errorf("unknown card format %q (H10301, H10306, Corp1000, H10304, H10302, or a bit count)", fields[0])
	}
	var facility uint64
	if len(fields) == 3 {
		if facility, err = strconv.ParseUint(fields[1], 0, 32); err != nil {
			return none, fmt.Errorf("facility code %q: not a number", fields[1])
		}
	} else if format.MaxFacility() > 0 {
		return none, fmt.Errorf("%v needs a facility code and a card number", format)
	}
	number, err := strconv.ParseUint(fields[len(fields)-1], 0, 64)
	if err != nil {
		return none, fmt.Errorf("card number %q: not a number", fields[len(fields)-1])
	}
	f, err := wiegand.Encode(format, uint32(facility), number)
	if err != nil {
		return none, fmt.Errorf("%v %d:%d: %w", format, facility, number, err)
	}
	return f, nil
}

func parseBits(n int, value string) (wiegand.Frame, error) {
	var none wiegand.Frame
	if n < 1 || n > 64 {
		return none, fmt.Errorf("bit count %d outside 1–64", n)
	}
	v, err := strconv.ParseUint(value, 0, 64)
	if err != nil {
		return none, fmt.Errorf("card bits %q: not a number (0x hex, 0b binary or decimal)", value)
	}
	if n < 64 && v>>n != 0 {
		return none, fmt.Errorf("card bits %s do not fit in %d bits", value, n)
	}
	return wiegand.ParseBits(fmt.Sprintf("%0*b", n, v))
}
