package pd

import (
	"bytes"
	"strings"
	"time"

	"varco.dev/protocol/osdp"
)

// display is a character display: the permanent text, and the temporary
// text that covers it until its timer runs out. A temporary text that
// starts on an idle display starts from a blank screen; further temporary
// texts before it times out add to it (a message longer than 32 characters
// takes several TEXT commands) and restart the timer.
type display struct {
	rows, cols int
	perm, temp [][]byte
	tempUntil  time.Time
}

func newDisplay(rows, cols int) display {
	if rows <= 0 {
		return display{}
	}
	return display{rows: rows, cols: cols, perm: blank(rows, cols), temp: blank(rows, cols)}
}

func blank(rows, cols int) [][]byte {
	s := make([][]byte, rows)
	for i := range s {
		s[i] = bytes.Repeat([]byte{' '}, cols)
	}
	return s
}

// lines returns the rows shown at time now.
func (d *display) lines(now time.Time) (rows []string, temporary bool, until time.Time) {
	if d.rows == 0 {
		return nil, false, time.Time{}
	}
	if now.Before(d.tempUntil) {
		return trim(d.temp), true, d.tempUntil
	}
	return trim(d.perm), false, time.Time{}
}

func (d *display) permanent() []string {
	if d.rows == 0 {
		return nil
	}
	return trim(d.perm)
}

func trim(screen [][]byte) []string {
	s := make([]string, len(screen))
	for i, r := range screen {
		s[i] = strings.TrimRight(string(r), " ")
	}
	return s
}

// text writes an osdp_TEXT command to the display. Rows and columns count
// from 1. A device without a display, or a reader other than 0, gets
// NAK 3; a position outside the display or an unknown text command gets
// NAK 9. Text that runs past the last column is cut (commands 1 and 3) or
// continues on the next row (2 and 4); past the last row it is dropped.
// Characters outside printable ASCII show as '?'.
func (d *Device) text(now time.Time, c osdp.Text) osdp.Reply {
	disp := &d.display
	switch {
	case disp.rows == 0 || c.Reader != 0:
		return nak(osdp.NakUnknownCommand)
	case c.Command < osdp.TextPermanent || c.Command > osdp.TextTemporaryWrap,
		c.Row < 1 || int(c.Row) > disp.rows, c.Column < 1 || int(c.Column) > disp.cols:
		return nak(osdp.NakUnableToProcess)
	}
	screen := disp.perm
	if c.Command == osdp.TextTemporary || c.Command == osdp.TextTemporaryWrap {
		if !now.Before(disp.tempUntil) {
			disp.temp = blank(disp.rows, disp.cols)
		}
		screen = disp.temp
		disp.tempUntil = now.Add(time.Duration(c.TempTime) * time.Second)
	}
	wrap := c.Command == osdp.TextPermanentWrap || c.Command == osdp.TextTemporaryWrap
	row, col := int(c.Row)-1, int(c.Column)-1
	for i := 0; i < len(c.Text); i++ {
		if col == disp.cols {
			if !wrap {
				break
			}
			row, col = row+1, 0
		}
		if row == disp.rows {
			break
		}
		ch := c.Text[i]
		if ch < ' ' || ch > '~' {
			ch = '?'
		}
		screen[row][col] = ch
		col++
	}
	return osdp.Ack{}
}
