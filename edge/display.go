package edge

import "unicode/utf8"

// MaxRows is the most display rows a decision fills; a reader that reports
// more gets MaxRows.
const MaxRows = 8

// Display is the text a decision shows, fitted to the reader's rows ×
// columns. Texts are word-wrapped: a line breaks at spaces and at '\n', a
// word is cut only when it alone is longer than a line, and widths are
// counted in runes ("Perché" is 6 columns; the cloud sends texts in NFC, and
// a reader that cannot show a rune is the reader bus's to transliterate).
//
// Texts are added most important first, each starting on a new line. The
// first text is cut at the last row if it is longer than the display; a later
// text is shown only if all of it fits in the rows left, and the texts after
// one that does not fit are dropped too, so that a less important text never
// takes the place of a more important one.
//
// Lines are substrings of the texts added, so filling a Display does not
// allocate: a line is the run of the text from its first word to its last,
// spaces between them included.
type Display struct {
	lines      [MaxRows]string
	n          int
	rows, cols int
}

// Lines returns the lines, at most Rows.
func (d *Display) Lines() []string { return d.lines[:d.n] }

// Len is the number of lines.
func (d *Display) Len() int { return d.n }

// Rows and Cols are the size the display was fitted to.
func (d *Display) Rows() int { return d.rows }

// Cols is the width the lines were fitted to.
func (d *Display) Cols() int { return d.cols }

// FitText returns text fitted to a display of rows × cols as the first text
// of a Display is: wrapped, and cut at the last row.
func FitText(text string, rows, cols int) []string {
	var d Display
	d.reset(rows, cols)
	d.add(text, true)
	return append([]string(nil), d.Lines()...)
}

func (d *Display) reset(rows, cols int) {
	d.n, d.rows, d.cols = 0, min(max(rows, 0), MaxRows), max(cols, 0)
	if d.cols == 0 {
		d.rows = 0
	}
}

// add wraps text onto the rows left. If it does not all fit, it adds what
// fits when partial is true and nothing otherwise. It reports whether the
// whole text was added.
func (d *Display) add(text string, partial bool) bool {
	room := d.rows - d.n
	if room <= 0 {
		return false
	}
	var tmp [MaxRows]string
	n, all := wrap(text, d.cols, tmp[:room])
	if !all && !partial {
		return false
	}
	d.n += copy(d.lines[d.n:], tmp[:n])
	return all
}

// wrap word-wraps text into lines of at most cols runes, writing them to
// out. It returns how many it wrote and whether that was the whole text.
// Words are separated by ' '; '\n' ends a line; empty lines are dropped.
func wrap(text string, cols int, out []string) (n int, all bool) {
	start, end, width := -1, 0, 0 // the line being built: text[start:end], width runes
	emit := func(line string) bool {
		if n == len(out) {
			return false
		}
		out[n] = line
		n++
		return true
	}
	for i := 0; i < len(text); {
		switch text[i] {
		case '\n':
			if start >= 0 && !emit(text[start:end]) {
				return n, false
			}
			start = -1
			i++
			continue
		case ' ':
			i++
			continue
		}
		j := i
		for j < len(text) && text[j] != ' ' && text[j] != '\n' {
			j++
		}
		w := utf8.RuneCountInString(text[i:j])
		if start >= 0 {
			if gap := i - end; width+gap+w <= cols { // the gap is ASCII spaces
				end, width, i = j, width+gap+w, j
				continue
			}
			if !emit(text[start:end]) {
				return n, false
			}
			start = -1
		}
		for w > cols { // a word longer than a line: cut it every cols runes
			k := i
			for range cols {
				_, size := utf8.DecodeRuneInString(text[k:])
				k += size
			}
			if !emit(text[i:k]) {
				return n, false
			}
			i, w = k, w-cols
		}
		start, end, width, i = i, j, w, j
	}
	if start >= 0 && !emit(text[start:end]) {
		return n, false
	}
	return n, true
}
