package http

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/xuri/excelize/v2"

	"varco.dev/cloud"
)

func memberFilter(r *http.Request) (cloud.MemberFilter, error) {
	var f cloud.MemberFilter
	var err error
	q := r.URL.Query()
	f.Query, f.Tag = q.Get("q"), q.Get("tag")
	if f.Limit, err = queryLimit(r, 50, 1000); err != nil {
		return f, err
	}
	if f.Cursor, err = queryInt64(r, "cursor"); err != nil {
		return f, err
	}
	if f.CommercialStatusID, err = queryInt64(r, "status_id"); err != nil {
		return f, err
	}
	if f.OperatorID, err = queryInt64(r, "operator_id"); err != nil {
		return f, err
	}
	switch q.Get("archived") {
	case "", "false":
	case "true":
		f.IncludeArchived = true
	default:
		return f, cloud.Invalid("archived", "Must be true or false.")
	}
	return f, nil
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
	if err := decode(w, r, &m); err != nil {
		s.fail(w, r, err)
		return
	}
	m.ID, m.Version, m.ArchivedAt = 0, 0, nil
	if err := s.MemberService.CreateMember(r.Context(), &m); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/members/%d", m.ID))
	writeVersioned(w, http.StatusCreated, m.Version, m)
}

func (s *Server) handleGetMember(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.MemberService.FindMemberByID(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeVersioned(w, http.StatusOK, m.Version, m)
}

func (s *Server) handleUpdateMember(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.MemberUpdate
		Version *int `json:"version"`
	}
	id, v, err := s.editRequest(w, r, &req, &req.Version)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.MemberService.UpdateMember(r.Context(), id, v, req.MemberUpdate)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeVersioned(w, http.StatusOK, m.Version, m)
}

func (s *Server) handleArchiveMember(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Version *int `json:"version"`
	}
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	v, err := version(r, req.Version)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.MemberService.ArchiveMember(r.Context(), id, v)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeVersioned(w, http.StatusOK, m.Version, m)
}

func (s *Server) handleImportMembers(w http.ResponseWriter, r *http.Request) {
	rows, err := cloud.ParseMembersCSV(http.MaxBytesReader(w, r.Body, MaxImportBytes))
	if err != nil {
		s.fail(w, r, jsonErrorOr(err))
		return
	}
	rep, err := s.MemberService.ImportMembers(r.Context(), rows)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// jsonErrorOr maps a body-size error to ETOOLARGE and leaves others.
func jsonErrorOr(err error) error {
	if cloud.ErrorCode(err) == cloud.EINTERNAL {
		if e := jsonError(err); cloud.ErrorCode(e) == cloud.ETOOLARGE {
			return e
		}
	}
	return err
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
	switch format := r.URL.Query().Get("format"); format {
	case "", "csv":
		// Collect first so that an error still gets a JSON error response.
		var ms []*cloud.Member
		if err := s.eachMember(r, f)(func(m *cloud.Member) error { ms = append(ms, m); return nil }); err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="members.csv"`)
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
		if err := s.eachMember(r, f)(func(m *cloud.Member) error { return writeRow(cloud.MemberCSVRecord(m)) }); err != nil {
			s.fail(w, r, err)
			return
		}
		if err := sw.Flush(); err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
		w.Header().Set("Content-Disposition", `attachment; filename="members.xlsx"`)
		if err := x.Write(w); err != nil {
			s.Logger.WarnContext(r.Context(), "export xlsx", "err", err)
		}
	default:
		s.fail(w, r, cloud.Invalid("format", "Format must be csv or xlsx."))
	}
}

// Credentials and memberships.

func (s *Server) handleListCredentials(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cs, err := s.MemberService.FindCredentials(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page[*cloud.Credential]{Items: cs})
}

func (s *Server) handleCreateCredential(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req struct {
		Key        string     `json:"key"`
		Label      string     `json:"label"`
		ValidFrom  cloud.Date `json:"valid_from"`
		ValidUntil cloud.Date `json:"valid_until"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	c := &cloud.Credential{MemberID: id, Key: req.Key, Label: req.Label, ValidFrom: req.ValidFrom, ValidUntil: req.ValidUntil}
	if err := s.MemberService.CreateCredential(r.Context(), c); err != nil {
		s.fail(w, r, err)
		return
	}
	writeVersioned(w, http.StatusCreated, c.Version, c)
}

func (s *Server) handleUpdateCredential(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.CredentialUpdate
		Version *int `json:"version"`
	}
	id, v, err := s.editRequest(w, r, &req, &req.Version)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.MemberService.UpdateCredential(r.Context(), id, v, req.CredentialUpdate)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeVersioned(w, http.StatusOK, c.Version, c)
}

func (s *Server) handleListMemberships(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ms, err := s.MemberService.FindMemberships(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page[*cloud.Membership]{Items: ms})
}

func (s *Server) handleCreateMembership(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req struct {
		Name     string     `json:"name"`
		StartsOn cloud.Date `json:"starts_on"`
		EndsOn   cloud.Date `json:"ends_on"`
		SiteIDs  []int64    `json:"site_ids"`
	}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	ms := &cloud.Membership{MemberID: id, Name: req.Name, StartsOn: req.StartsOn, EndsOn: req.EndsOn, SiteIDs: req.SiteIDs}
	if err := s.MemberService.CreateMembership(r.Context(), ms); err != nil {
		s.fail(w, r, err)
		return
	}
	writeVersioned(w, http.StatusCreated, ms.Version, ms)
}

func (s *Server) handleUpdateMembership(w http.ResponseWriter, r *http.Request) {
	var req struct {
		cloud.MembershipUpdate
		Version *int `json:"version"`
	}
	id, v, err := s.editRequest(w, r, &req, &req.Version)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ms, err := s.MemberService.UpdateMembership(r.Context(), id, v, req.MembershipUpdate)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeVersioned(w, http.StatusOK, ms.Version, ms)
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
