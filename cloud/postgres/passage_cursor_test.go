package postgres

import "testing"

// FuzzPassageCursor: a cursor comes from a query string; parsing anything
// returns a cursor or EINVALID, never panics, and a parsed cursor prints
// back to one that parses to the same position.
func FuzzPassageCursor(f *testing.F) {
	for _, s := range []string{"1741077000000000.42", "0.1", "-5.7", "1.0", "x", "", ".", "1.", ".1", "1.2.3", "9223372036854775807.9223372036854775807",
		"9223372036854775808.1", "1e3.1", " 1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parsePassageCursor(s)
		if err != nil {
			return
		}
		again, err := parsePassageCursor(c.String())
		if err != nil || !again.at.Equal(c.at) || again.id != c.id || c.id <= 0 {
			t.Fatalf("%q parsed to %v, printed %q, parsed again to %v (%v)", s, c, c.String(), again, err)
		}
	})
}
