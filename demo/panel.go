package demo

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"varco.dev/firmware-sim/sim"
)

// panelWidth is the inner width of a reader's box: wide enough for a
// 4×16 reader display with room.
const panelWidth = 24

// writePanel draws what a person sees at each reader, side by side:
//
//	┌ entrance · reader 1 ───────┐  ┌ exit · reader 2 ───────────┐
//	│Please see reception:       │  │Welcome to varco            │
//	│medical certificate expired │  │                            │
//	└────────────────────────────┘  └────────────────────────────┘
//	 LED red · gate closed           LED off · gate closed
func writePanel(w io.Writer, names map[int]string, st sim.State) {
	rows := 0
	for _, r := range st.Readers {
		rows = max(rows, len(r.Display))
	}
	rows = max(rows, 2)
	var lines = make([]strings.Builder, rows+3)
	for i, r := range st.Readers {
		sep := ""
		if i > 0 {
			sep = "  "
		}
		title := fmt.Sprintf(" %s (reader %d) ", names[r.Address], r.Address)
		lines[0].WriteString(sep + "┌" + title + strings.Repeat("─", max(0, panelWidth-utf8.RuneCountInString(title))) + "┐")
		for j := range rows {
			text := ""
			if j < len(r.Display) {
				text = strings.TrimRight(r.Display[j], " ")
			}
			lines[1+j].WriteString(sep + "│" + pad(text, panelWidth) + "│")
		}
		lines[rows+1].WriteString(sep + "└" + strings.Repeat("─", panelWidth) + "┘")
		lines[rows+2].WriteString(sep + " " + padRight(status(r), panelWidth+1))
	}
	for i := range lines {
		fmt.Fprintln(w, "    "+strings.TrimRight(lines[i].String(), " "))
	}
}

// status is the reader's LED colour and its gate.
func status(r sim.ReaderState) string {
	if !r.Powered {
		return "powered off"
	}
	gate := "gate closed"
	if r.Gate.Open {
		gate = "gate OPEN"
	}
	return fmt.Sprintf("LED %s · %s", r.LED().Color, gate)
}

// padRight pads s to at least n runes.
func padRight(s string, n int) string {
	return s + strings.Repeat(" ", max(0, n-utf8.RuneCountInString(s)))
}

// pad cuts or pads s to n runes.
func pad(s string, n int) string {
	if c := utf8.RuneCountInString(s); c < n {
		return s + strings.Repeat(" ", n-c)
	}
	return string([]rune(s)[:n])
}
