package osdp

import "testing"

func TestFit(t *testing.T) {
	tests := []struct {
		in   string
		cols int
		want string
	}{
		{"Welcome", 10, "Welcome   "},
		{"Please see reception", 16, "Please see recep"},
		{"Perché è scaduto", 16, "Perche e scaduto"},
		{"Ça va, Jürgen? Año", 18, "Ca va, Jurgen? Ano"},
		{"“Ciao” – l’ultima", 17, `"Ciao" - l'ultima`},
		{"日本 ok", 6, "?? ok "},
		{"tab\there", 8, "tab?here"},
		{"", 3, "   "},
		{"no display width", 0, "no display width"},
	}
	for _, tt := range tests {
		if got := fit(tt.in, tt.cols); got != tt.want {
			t.Errorf("fit(%q, %d) = %q, want %q", tt.in, tt.cols, got, tt.want)
		}
	}
}
