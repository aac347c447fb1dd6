package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"varco.dev/cloud"
	"varco.dev/cloud/mqtt"
	vsync "varco.dev/protocol/sync"
)

var _ mqtt.CommandStore = (*CommandStore)(nil)

// CommandStore implements mqtt.CommandStore: the commands staff send to
// edges, and what became of them.
type CommandStore struct{ db *DB }

// NewCommandStore returns a CommandStore on db.
func NewCommandStore(db *DB) *CommandStore { return &CommandStore{db: db} }

// commandCols are the columns scanCommand reads; $now decides which
// commands read as expired.
func commandCols(now string) string {
	return `id, edge_id, op, reader, text, seconds,
	CASE WHEN status <> 'done' AND expires_at <= ` + now + ` THEN 'expired' ELSE status END,
	created_by, created_at, expires_at, sent_at, done_at`
}

func scanCommand(row pgx.Row) (*cloud.EdgeCommand, error) {
	var c cloud.EdgeCommand
	err := row.Scan(&c.ID, &c.EdgeID, &c.Op, &c.Reader, &c.Text, &c.Seconds, &c.Status, &c.CreatedBy, &c.CreatedAt, &c.ExpiresAt, &c.SentAt, &c.DoneAt)
	return &c, err
}

// wireCommand is the message of command c for edge code of tenant at site.
func wireCommand(c *cloud.EdgeCommand, tenant, site, code string, now time.Time) *vsync.Command {
	return &vsync.Command{
		Header: vsync.Header{Tenant: tenant, Site: site, Edge: code, Time: vsync.TimestampOf(now)},
		ID:     uint64(c.ID), Op: c.Op.WireOp(), Reader: c.Reader, Text: c.Text, Seconds: uint16(c.Seconds),
		Expires: vsync.TimestampOf(c.ExpiresAt),
	}
}

// CreateCommand implements mqtt.CommandStore: any operator of the edge's
// tenant, audited.
func (s *CommandStore) CreateCommand(ctx context.Context, edgeID int64, req cloud.CommandRequest) (*cloud.EdgeCommand, *vsync.Command, error) {
	if err := req.Validate(); err != nil {
		return nil, nil, err
	}
	var (
		c   *cloud.EdgeCommand
		msg *vsync.Command
	)
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var (
			code, slug string
			site       int64
		)
		err := tx.QueryRow(ctx, `SELECT e.code, e.site_id, t.slug FROM edges e JOIN tenants t ON t.id = e.tenant_id
			WHERE e.tenant_id = $1 AND e.id = $2 AND e.deleted_at IS NULL`, tx.tenant(), edgeID).Scan(&code, &site, &slug)
		if err != nil {
			return notFound(err, "Edge")
		}
		var opID *int64
		if tx.op.ID > 0 {
			opID = &tx.op.ID
		}
		if c, err = scanCommand(tx.QueryRow(ctx, `INSERT INTO edge_commands (tenant_id, edge_id, op, reader, text, seconds, status,
			created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8, $9) RETURNING `+commandCols("$8"),
			tx.tenant(), edgeID, req.Op, req.Reader, req.Text, req.Seconds, opID, tx.now, tx.now.Add(req.TTL()))); err != nil {
			return mapErr(fmt.Errorf("insert command: %w", err))
		}
		msg = wireCommand(c, slug, strconv.FormatInt(site, 10), code, tx.now)
		if err := msg.Validate(); err != nil {
			return cloud.Invalid("", "The edge cannot carry out this command: %v", err)
		}
		return tx.audit(ctx, "edge.command", "edge", edgeID, map[string]any{"command_id": c.ID, "op": c.Op,
			"reader": c.Reader, "text": c.Text, "seconds": c.Seconds, "expires_at": c.ExpiresAt})
	})
	if err != nil {
		return nil, nil, err
	}
	return c, msg, nil
}

// MarkCommandSent implements mqtt.CommandStore.
func (s *CommandStore) MarkCommandSent(ctx context.Context, id int64) error {
	return markCommandSent(ctx, s.db, id)
}

// MarkCommandSent implements mqtt.EdgeStore.
func (s *EventStore) MarkCommandSent(ctx context.Context, id int64) error {
	return markCommandSent(ctx, s.db, id)
}

// markCommandSent moves a queued command to sent; a command the edge
// already reported done stays done.
func markCommandSent(ctx context.Context, db *DB, id int64) error {
	if _, err := db.Pool.Exec(ctx, `UPDATE edge_commands SET status = 'sent', sent_at = $2 WHERE id = $1 AND status = 'queued'`,
		id, db.now()); err != nil {
		return fmt.Errorf("mark command %d sent: %w", id, err)
	}
	return nil
}

// FindCommands implements mqtt.CommandStore: an edge's commands, newest first.
func (s *CommandStore) FindCommands(ctx context.Context, edgeID, cursor int64, limit int) ([]*cloud.EdgeCommand, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := s.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM edges WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL)`,
		op.TenantID, edgeID).Scan(&exists); err != nil {
		return nil, fmt.Errorf("find edge: %w", err)
	}
	if !exists {
		return nil, cloud.NotFound("Edge")
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+commandCols("$5")+` FROM edge_commands
		WHERE tenant_id = $1 AND edge_id = $2 AND ($3::bigint = 0 OR id < $3) ORDER BY id DESC LIMIT $4`,
		op.TenantID, edgeID, cursor, limitOf(limit, 50, 500), s.db.now())
	if err != nil {
		return nil, fmt.Errorf("find commands: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.EdgeCommand, error) { return scanCommand(r) })
}

// pendingCommands returns the commands of edge e that are still queued (the
// broker never took them) and not expired, oldest first, as messages.
func pendingCommands(ctx context.Context, tx pgx.Tx, e edgeRef, h vsync.Header, now time.Time) ([]mqtt.PendingCommand, error) {
	rows, err := tx.Query(ctx, `SELECT `+commandCols("$3")+` FROM edge_commands
		WHERE tenant_id = $1 AND edge_id = $2 AND status = 'queued' AND expires_at > $3 ORDER BY id`, e.tenantID, e.id, now)
	if err != nil {
		return nil, fmt.Errorf("pending commands: %w", err)
	}
	cmds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.EdgeCommand, error) { return scanCommand(r) })
	if err != nil {
		return nil, fmt.Errorf("pending commands: %w", err)
	}
	out := make([]mqtt.PendingCommand, len(cmds))
	for i, c := range cmds {
		out[i] = mqtt.PendingCommand{ID: c.ID, Msg: wireCommand(c, h.Tenant, h.Site, h.Edge, now)}
	}
	return out, nil
}
