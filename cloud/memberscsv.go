package cloud

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// MemberCSVColumns are the columns of the member CSV format, in export
// order. An import may use any subset in any order, plus "credential" (a
// key to assign). "consents" lists the granted channel:purpose pairs,
// separated by ";", e.g. "sms:marketing;email:service"; "tags" too is
// ";"-separated. Dates are YYYY-MM-DD.
var MemberCSVColumns = []string{"id", "kind", "first_name", "last_name", "company_name", "birth_date", "tax_code",
	"vat_number", "email", "mobile", "phone", "language", "tags", "consents", "medical_cert_expiry", "suspended"}

// MaxImportRows bounds one CSV import.
const MaxImportRows = 50000

// ParseMembersCSV reads a member CSV. A bad header fails the whole file
// (EINVALID); a bad row is returned with Err set and the rest goes on.
func ParseMembersCSV(r io.Reader) ([]MemberImportRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, Invalid("file", "The file is empty.")
	} else if err != nil {
		return nil, Invalid("file", "Cannot read the CSV header: %v", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if h != "credential" && !slices.Contains(MemberCSVColumns, h) {
			return nil, Invalid("file", "Unknown column %q.", h)
		}
		if _, dup := col[h]; dup {
			return nil, Invalid("file", "Column %q appears twice.", h)
		}
		col[h] = i
	}
	delete(col, "id") // exports carry ids; an import creates new members
	var rows []MemberImportRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				rows = append(rows, MemberImportRow{Line: pe.Line, Err: Invalid("", "Malformed CSV: %v", pe.Err)})
				if len(rows) > MaxImportRows {
					return nil, Invalid("file", "At most %d rows per import.", MaxImportRows)
				}
				continue
			}
			return nil, fmt.Errorf("read CSV: %w", err)
		}
		if len(rows) >= MaxImportRows {
			return nil, Invalid("file", "At most %d rows per import.", MaxImportRows)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // blank line
		}
		rows = append(rows, parseMemberRecord(line, rec, col))
	}
	return rows, nil
}

func parseMemberRecord(line int, rec []string, col map[string]int) MemberImportRow {
	row := MemberImportRow{Line: line}
	get := func(name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	m := &row.Member
	m.Kind = MemberKind(strings.ToLower(get("kind")))
	if m.Kind == "" {
		m.Kind = KindPerson
	}
	m.FirstName, m.LastName, m.CompanyName = get("first_name"), get("last_name"), get("company_name")
	m.TaxCode, m.VATNumber, m.Email, m.Mobile, m.Phone = get("tax_code"), get("vat_number"), get("email"), get("mobile"), get("phone")
	m.Language = strings.ToLower(get("language"))
	var err error
	if m.BirthDate, err = ParseDate(get("birth_date")); err != nil {
		row.Err = Invalid("birth_date", "%v", err)
		return row
	}
	if m.MedicalCertExpiry, err = ParseDate(get("medical_cert_expiry")); err != nil {
		row.Err = Invalid("medical_cert_expiry", "%v", err)
		return row
	}
	switch strings.ToLower(get("suspended")) {
	case "", "0", "false", "no", "n":
	case "1", "true", "yes", "y":
		m.Suspended = true
	default:
		row.Err = Invalid("suspended", "Use yes or no.")
		return row
	}
	for t := range strings.SplitSeq(get("tags"), ";") {
		if t = strings.TrimSpace(t); t != "" {
			m.Tags = append(m.Tags, t)
		}
	}
	for c := range strings.SplitSeq(get("consents"), ";") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		ch, p, ok := strings.Cut(c, ":")
		if !ok {
			row.Err = Invalid("consents", "Consent %q is not channel:purpose.", c)
			return row
		}
		m.Consents = append(m.Consents, Consent{Channel: Channel(ch), Purpose: Purpose(p), Granted: true})
	}
	row.Credential = get("credential")
	return row
}

// WriteMembersCSV writes the header and one line per member.
func WriteMembersCSV(w io.Writer, members func(yield func(*Member) error) error) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(MemberCSVColumns); err != nil {
		return err
	}
	err := members(func(m *Member) error { return cw.Write(MemberCSVRecord(m)) })
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// MemberCSVRecord returns a member's fields in MemberCSVColumns order.
// Cells that a spreadsheet would run as a formula are prefixed with "'".
func MemberCSVRecord(m *Member) []string {
	var consents []string
	for _, c := range m.Consents {
		if c.Granted {
			consents = append(consents, string(c.Channel)+":"+string(c.Purpose))
		}
	}
	suspended := "no"
	if m.Suspended {
		suspended = "yes"
	}
	rec := []string{fmt.Sprint(m.ID), string(m.Kind), m.FirstName, m.LastName, m.CompanyName, m.BirthDate.String(), m.TaxCode,
		m.VATNumber, m.Email, m.Mobile, m.Phone, m.Language, strings.Join(m.Tags, ";"), strings.Join(consents, ";"),
		m.MedicalCertExpiry.String(), suspended}
	for i, v := range rec {
		if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) && !(i == 9 && mobileRE.MatchString(v)) {
			rec[i] = "'" + v
		}
	}
	return rec
}
