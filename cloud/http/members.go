package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"varco.dev/cloud"
)

func memberFilter(r *http.Request) (cloud.MemberFilter, error) {
	var f cloud.MemberFilter
	vals := r.URL.Query()
	f.Query, f.Tag = vals.Get("q"), vals.Get("tag")
	q := query{r: r}
	f.Limit = q.limit(50, 1000)
	f.Cursor = q.int64("cursor")
	f.CommercialStatusID = q.int64("status_id")
	f.OperatorID = q.int64("operator_id")
	f.IncludeArchived = q.bool("archived")
	return f, q.err
}

func (s *Server) handleListMembers(w http.ResponseWriter, r *http.Request) {
	f, err := memberFilter(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ms, err := s.MemberService.FindMembers(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(ms, f.Limit, func(m *cloud.Member) int64 { return m.ID }))
}

func (s *Server) handleCreateMember(w http.ResponseWriter, r *http.Request) {
	var m cloud.Member
	serveCreate(s, w, r, &m, func(ctx context.Context) (*cloud.Member, error) {
		m.ID, m.Version, m.ArchivedAt, m.LastVisitAt = 0, 0, nil, nil
		return &m, s.MemberService.CreateMember(ctx, &m)
	}, func(m *cloud.Member) string { return fmt.Sprintf("/api/v1/members/%d", m.ID) })
}

func (s *Server) handleGetMember(w http.ResponseWriter, r *http.Request) {
	serveGet(s, w, r, s.MemberService.FindMemberByID)
}

func (s *Server) handleUpdateMember(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.MemberUpdate
		Version *int `json:"version"`
	}
	serveUpdate(s, w, r, &req, &req.Version, func(ctx context.Context, id int64, v int) (*cloud.Member, error) {
		return s.MemberService.UpdateMember(ctx, id, v, req.MemberUpdate)
	})
}

func (s *Server) handleArchiveMember(w http.ResponseWriter, r *http.Request) {
	serveArchive(s, w, r, s.MemberService.ArchiveMember)
}

// handleImportMembers stores a member CSV as an import job. A file of at
// most cloud.ImportSyncRows rows is imported before the response: 200 with
// the finished job. A bigger one, or any file sent with
// "Prefer: respond-async", is imported in the background: 202 with the
// queued job. Either way Location names the job, to poll for progress.
func (s *Server) handleImportMembers(w http.ResponseWriter, r *http.Request) {
	file, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxImportBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(w, r, cloud.Errorf(cloud.ETOOLARGE, "The file is larger than %d bytes.", mbe.Limit))
			return
		}
		s.fail(w, r, cloud.Invalid("file", "Cannot read the upload."))
		return
	}
	background := preferAsync(r)
	job, err := s.ImportService.ImportMembers(r.Context(), file, background)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if background {
		w.Header().Set("Preference-Applied", "respond-async")
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/imports/%d", job.ID))
	status := http.StatusAccepted
	if inline := !background && job.Rows <= cloud.ImportSyncRows; inline && job.Finished() {
		status = http.StatusOK
	}
	writeJSON(w, status, job)
}

// preferAsync reports whether the request carries "Prefer: respond-async"
// (RFC 7240).
func preferAsync(r *http.Request) bool {
	for _, h := range r.Header.Values("Prefer") {
		for p := range strings.SplitSeq(h, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(name), "respond-async") {
				return true
			}
		}
	}
	return false
}

func (s *Server) handleListImports(w http.ResponseWriter, r *http.Request) {
	serveCursorPage(s, w, r, s.ImportService.FindImports, func(j *cloud.ImportJob) int64 { return j.ID })
}

func (s *Server) handleGetImport(w http.ResponseWriter, r *http.Request) {
	serveFound(s, w, r, s.ImportService.FindImportByID)
}

func (s *Server) handleImportErrors(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := queryLimit(r, 100, 1000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cursor, err := queryInt64(r, "cursor")
	if err != nil || cursor > math.MaxInt32 {
		s.fail(w, r, cloud.Invalid("cursor", "Must be a row number."))
		return
	}
	errs, err := s.ImportService.FindImportErrors(r.Context(), id, int(cursor), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(errs, limit, func(e cloud.MemberImportError) int64 { return int64(e.Row) }))
}

// eachMember pages through every member matching f.
func (s *Server) eachMember(r *http.Request, f cloud.MemberFilter) func(yield func(*cloud.Member) error) error {
	return func(yield func(*cloud.Member) error) error {
		f.Limit = 1000
		for {
			ms, err := s.MemberService.FindMembers(r.Context(), f)
			if err != nil {
				return err
			}
			for _, m := range ms {
				if err := yield(m); err != nil {
					return err
				}
			}
			if len(ms) < f.Limit {
				return nil
			}
			f.Cursor = ms[len(ms)-1].ID
		}
	}
}

func (s *Server) handleExportMembers(w http.ResponseWriter, r *http.Request) {
	f, err := memberFilter(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f.Cursor = 0
	s.exportMembers(w, r, r.URL.Query().Get("format"), "members", s.eachMember(r, f))
}

// exportMembers writes the members each yields as a file named name.csv
// or name.xlsx, in the member CSV format (cloud.MemberCSVColumns) and
// format "csv" (also "") or "xlsx". Members are read before the first byte
// is written, so that an error still gets a JSON error response.
func (s *Server) exportMembers(w http.ResponseWriter, r *http.Request, format, name string, each func(yield func(*cloud.Member) error) error) {
	switch format {
	case "", "csv":
		var ms []*cloud.Member
		if err := each(func(m *cloud.Member) error { ms = append(ms, m); return nil }); err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.csv"`, name))
		err := cloud.WriteMembersCSV(w, func(yield func(*cloud.Member) error) error {
			for _, m := range ms {
				if err := yield(m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			s.Logger.WarnContext(r.Context(), "export csv", "err", err)
		}
	case "xlsx":
		x := excelize.NewFile()
		defer func() { _ = x.Close() }()
		sw, err := x.NewStreamWriter("Sheet1")
		if err != nil {
			s.fail(w, r, err)
			return
		}
		row := 1
		writeRow := func(vals []string) error {
			cells := make([]any, len(vals))
			for i, v := range vals {
				cells[i] = v
			}
			cell, _ := excelize.CoordinatesToCellName(1, row)
			row++
			return sw.SetRow(cell, cells)
		}
		if err := writeRow(cloud.MemberCSVColumns); err != nil {
			s.fail(w, r, err)
			return
		}
		if err := each(func(m *cloud.Member) error { return writeRow(cloud.MemberCSVRecord(m)) }); err != nil {
			s.fail(w, r, err)
			return
		}
		if err := sw.Flush(); err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.xlsx"`, name))
		if err := x.Write(w); err != nil {
			s.Logger.WarnContext(r.Context(), "export xlsx", "err", err)
		}
	default:
		s.fail(w, r, cloud.Invalid("format", "Format must be csv or xlsx."))
	}
}

// Credentials and memberships.

func (s *Server) handleListCredentials(w http.ResponseWriter, r *http.Request) {
	serveListOf(s, w, r, s.MemberService.FindCredentials)
}

func (s *Server) handleCreateCredential(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Key        string     `json:"key"`
		Label      string     `json:"label"`
		ValidFrom  cloud.Date `json:"valid_from"`
		ValidUntil cloud.Date `json:"valid_until"`
	}
	serveCreateOf(s, w, r, &req, func(ctx context.Context, id int64) (*cloud.Credential, error) {
		c := &cloud.Credential{MemberID: id, Key: req.Key, Label: req.Label, ValidFrom: req.ValidFrom, ValidUntil: req.ValidUntil}
		return c, s.MemberService.CreateCredential(ctx, c)
	}, nil)
}

func (s *Server) handleUpdateCredential(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.CredentialUpdate
		Version *int `json:"version"`
	}
	serveUpdate(s, w, r, &req, &req.Version, func(ctx context.Context, id int64, v int) (*cloud.Credential, error) {
		return s.MemberService.UpdateCredential(ctx, id, v, req.CredentialUpdate)
	})
}

func (s *Server) handleListMemberships(w http.ResponseWriter, r *http.Request) {
	serveListOf(s, w, r, s.MemberService.FindMemberships)
}

func (s *Server) handleCreateMembership(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name        string             `json:"name"`
		StartsOn    cloud.Date         `json:"starts_on"`
		EndsOn      cloud.Date         `json:"ends_on"`
		SiteIDs     []int64            `json:"site_ids"`
		DeviceTypes []cloud.DeviceType `json:"device_types"`
	}
	serveCreateOf(s, w, r, &req, func(ctx context.Context, id int64) (*cloud.Membership, error) {
		ms := &cloud.Membership{MemberID: id, Name: req.Name, StartsOn: req.StartsOn, EndsOn: req.EndsOn, SiteIDs: req.SiteIDs, DeviceTypes: req.DeviceTypes}
		return ms, s.MemberService.CreateMembership(ctx, ms)
	}, nil)
}

func (s *Server) handleUpdateMembership(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.MembershipUpdate
		Version *int `json:"version"`
	}
	serveUpdate(s, w, r, &req, &req.Version, func(ctx context.Context, id int64, v int) (*cloud.Membership, error) {
		return s.MemberService.UpdateMembership(ctx, id, v, req.MembershipUpdate)
	})
}

// Instalments and bookings.

func (s *Server) handleListInstalments(w http.ResponseWriter, r *http.Request) {
	serveListOf(s, w, r, s.MemberService.FindInstalments)
}

func (s *Server) handleCreateInstalment(w http.ResponseWriter, r *http.Request) {
	var req struct {
		MembershipID *int64     `json:"membership_id"`
		Description  string     `json:"description"`
		AmountCents  int64      `json:"amount_cents"`
		Currency     string     `json:"currency"`
		DueOn        cloud.Date `json:"due_on"`
		PaidAt       *time.Time `json:"paid_at"`
	}
	serveCreateOf(s, w, r, &req, func(ctx context.Context, id int64) (*cloud.Instalment, error) {
		in := &cloud.Instalment{MemberID: id, MembershipID: req.MembershipID, Description: req.Description, AmountCents: req.AmountCents,
			Currency: req.Currency, DueOn: req.DueOn, PaidAt: req.PaidAt}
		return in, s.MemberService.CreateInstalment(ctx, in)
	}, func(in *cloud.Instalment) string { return fmt.Sprintf("/api/v1/instalments/%d", in.ID) })
}

func (s *Server) handleUpdateInstalment(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.InstalmentUpdate
		Version *int `json:"version"`
	}
	serveUpdate(s, w, r, &req, &req.Version, func(ctx context.Context, id int64, v int) (*cloud.Instalment, error) {
		return s.MemberService.UpdateInstalment(ctx, id, v, req.InstalmentUpdate)
	})
}

func (s *Server) handleListBookings(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f := cloud.BookingFilter{MemberID: id}
	q := query{r: r}
	f.From = q.date("from")
	f.To = q.date("to")
	f.Cursor = q.int64("cursor")
	f.Limit = q.limit(50, 500)
	if q.err != nil {
		s.fail(w, r, q.err)
		return
	}
	bs, err := s.MemberService.FindBookings(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(bs, f.Limit, func(b *cloud.Booking) int64 { return b.ID }))
}

func (s *Server) handleCreateBooking(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SiteID   int64               `json:"site_id"`
		Kind     cloud.BookingKind   `json:"kind"`
		Title    string              `json:"title"`
		StartsAt time.Time           `json:"starts_at"`
		EndsAt   time.Time           `json:"ends_at"`
		Status   cloud.BookingStatus `json:"status"`
	}
	serveCreateOf(s, w, r, &req, func(ctx context.Context, id int64) (*cloud.Booking, error) {
		b := &cloud.Booking{MemberID: id, SiteID: req.SiteID, Kind: req.Kind, Title: req.Title, StartsAt: req.StartsAt, EndsAt: req.EndsAt, Status: req.Status}
		return b, s.MemberService.CreateBooking(ctx, b)
	}, func(b *cloud.Booking) string { return fmt.Sprintf("/api/v1/bookings/%d", b.ID) })
}

func (s *Server) handleUpdateBooking(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.BookingUpdate
		Version *int `json:"version"`
	}
	serveUpdate(s, w, r, &req, &req.Version, func(ctx context.Context, id int64, v int) (*cloud.Booking, error) {
		return s.MemberService.UpdateBooking(ctx, id, v, req.BookingUpdate)
	})
}

func (s *Server) handleMemberAccess(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	siteID, err := strconv.ParseInt(r.URL.Query().Get("site_id"), 10, 64)
	if err != nil || siteID <= 0 {
		s.fail(w, r, cloud.Invalid("site_id", "site_id is required."))
		return
	}
	rec, err := s.AccessService.AccessRecord(r.Context(), id, siteID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (s *Server) handleCreateOverride(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req struct {
		GateID int64  `json:"gate_id"`
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	o := &cloud.Override{MemberID: id, GateID: req.GateID, Reason: req.Reason}
	if err := s.ActionService.CreateOverride(r.Context(), o); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, o)
}
