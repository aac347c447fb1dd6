package postgres

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"varco.dev/cloud"
	vsync "varco.dev/protocol/sync"
)

var _ cloud.PassageService = (*PassageService)(nil)

// PassageService implements cloud.PassageService on the edges' events.
type PassageService struct{ db *DB }

// NewPassageService returns a PassageService on db.
func NewPassageService(db *DB) *PassageService { return &PassageService{db: db} }

// passageCursor is a position in the newest-first order of passages: the
// last passage of a page, as "<at in µs since the epoch>.<id>".
type passageCursor struct {
	at time.Time
	id int64
}

func (c passageCursor) String() string {
	return strconv.FormatInt(c.at.UnixMicro(), 10) + "." + strconv.FormatInt(c.id, 10)
}

func parsePassageCursor(s string) (passageCursor, error) {
	bad := cloud.Invalid("cursor", "Not a cursor of this list.")
	a, b, ok := strings.Cut(s, ".")
	if !ok {
		return passageCursor{}, bad
	}
	at, err1 := strconv.ParseInt(a, 10, 64)
	id, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || id <= 0 {
		return passageCursor{}, bad
	}
	return passageCursor{at: time.UnixMicro(at).UTC(), id: id}, nil
}

// FindPassages implements cloud.PassageService: the tenant's passages
// newest first, keyset-paged on (at, id).
func (s *PassageService) FindPassages(ctx context.Context, f cloud.PassageFilter) ([]*cloud.Passage, string, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, "", err
	}
	if err := f.Validate(); err != nil {
		return nil, "", err
	}
	// Only the filters in use go into the SQL, planned for their values
	// (QueryExecModeExec), so that a member's passages come from the member
	// index and the others from the tenant's.
	where, args := []string{"tenant_id = $1", "kind = 1"}, []any{op.TenantID}
	add := func(cond string, arg ...any) {
		n := make([]any, len(arg))
		for i := range arg {
			args = append(args, arg[i])
			n[i] = len(args)
		}
		where = append(where, fmt.Sprintf(cond, n...))
	}
	if f.MemberID != 0 {
		add("member_id = $%d", f.MemberID)
	}
	if f.EdgeID != 0 {
		add("edge_id = $%d", f.EdgeID)
	}
	if f.Reader != "" {
		add("reader = $%d", f.Reader)
	}
	if !f.From.IsZero() {
		add("at >= $%d", f.From)
	}
	if !f.To.IsZero() {
		add("at < $%d", f.To)
	}
	switch f.Decision {
	case "grant":
		add("decision = $%d", int16(vsync.DecisionGrant))
	case "deny":
		add("decision = $%d", int16(vsync.DecisionDeny))
	}
	if f.Cursor != "" {
		c, err := parsePassageCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		add("(at, id) < ($%d, $%d)", c.at, c.id)
	}
	limit := limitOf(f.Limit, 50, 1000)
	args = append(args, limit)
	args = append([]any{pgx.QueryExecModeExec}, args...)
	rows, err := s.db.Pool.Query(ctx, `SELECT id, edge_id, seq, journal_epoch, at, received_at, reader, credential, member_id,
		decision, reason, action_id FROM edge_events WHERE `+strings.Join(where, " AND ")+
		fmt.Sprintf(` ORDER BY at DESC, id DESC LIMIT $%d`, len(args)-1), args...)
	if err != nil {
		return nil, "", fmt.Errorf("find passages: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Passage, error) {
		var (
			p                cloud.Passage
			seq              int64
			cred             []byte
			decision, reason int16
		)
		if err := r.Scan(&p.ID, &p.EdgeID, &seq, &p.JournalEpoch, &p.At, &p.ReceivedAt, &p.Reader, &cred, &p.MemberID,
			&decision, &reason, &p.ActionID); err != nil {
			return nil, err
		}
		p.Seq, p.Credential = uint64(seq), hex.EncodeToString(cred)
		p.Decision, p.Reason = vsync.Decision(decision).String(), vsync.Reason(reason).String()
		return &p, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("find passages: %w", err)
	}
	next := ""
	if len(items) == limit {
		last := items[len(items)-1]
		next = passageCursor{at: last.At, id: last.ID}.String()
	}
	return items, next, nil
}
