package mqtt

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"varco.dev/cloud"
	vsync "varco.dev/protocol/sync"
)

// CommandStore is what a Commander needs of the database.
type CommandStore interface {
	// CreateCommand records a queued command of the operator in ctx for
	// one of its tenant's edges, audited, and returns it with the message
	// to send. Returns ENOTFOUND if the edge is not the tenant's, EINVALID
	// for a bad request.
	CreateCommand(ctx context.Context, edgeID int64, req cloud.CommandRequest) (*cloud.EdgeCommand, *vsync.Command, error)
	// MarkCommandSent records that the broker took command id.
	MarkCommandSent(ctx context.Context, id int64) error
	// FindCommands lists an edge's commands, newest first.
	FindCommands(ctx context.Context, edgeID, cursor int64, limit int) ([]*cloud.EdgeCommand, error)
}

// CommanderConfig configures a Commander.
type CommanderConfig struct {
	Store  CommandStore // required
	Sealer Sealer       // required
	Client *Client      // required
	Logger *slog.Logger // slog.Default() when nil
	// PublishTimeout bounds each command's publish; 5s when 0.
	PublishTimeout time.Duration
}

// Commander implements cloud.CommandService: it records each command, then
// publishes it signed at QoS 1 on the edge's cmd topic. The edge carries a
// command out once, and not after its expiry; it reports it with an
// EventRemoteOpen or EventCommandDone that the Ingester stores, which marks
// the command done. A command the broker did not take stays queued and is
// sent on the edge's next Birth if it has not expired by then.
type Commander struct {
	cfg CommanderConfig
	log *slog.Logger
}

var _ cloud.CommandService = (*Commander)(nil)

// NewCommander validates cfg and returns a Commander.
func NewCommander(cfg CommanderConfig) (*Commander, error) {
	if cfg.Store == nil || cfg.Sealer == nil || cfg.Client == nil {
		return nil, errors.New("mqtt commander: a Store, a Sealer and a Client are required")
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.PublishTimeout = cmp.Or(cfg.PublishTimeout, 5*time.Second)
	return &Commander{cfg: cfg, log: cfg.Logger.With(slog.String("component", "commands"))}, nil
}

// SendCommand implements cloud.CommandService.
func (c *Commander) SendCommand(ctx context.Context, edgeID int64, req cloud.CommandRequest) (*cloud.EdgeCommand, error) {
	cmd, msg, err := c.cfg.Store.CreateCommand(ctx, edgeID, req)
	if err != nil {
		return nil, err
	}
	log := c.log.With(slog.Int64("command", cmd.ID), slog.String("tenant", msg.Tenant), slog.String("edge", msg.Edge),
		slog.String("op", string(cmd.Op)))
	if err := publishSealed(ctx, c.cfg.Client, c.cfg.Sealer, c.cfg.PublishTimeout, msg); err != nil {
		log.WarnContext(ctx, "command queued: the broker did not take it", slog.Any("error", err))
		return cmd, nil
	}
	if err := c.cfg.Store.MarkCommandSent(ctx, cmd.ID); err != nil {
		return nil, err
	}
	now := time.Now()
	cmd.Status, cmd.SentAt = cloud.CommandSent, &now
	log.InfoContext(ctx, "command sent")
	return cmd, nil
}

// FindCommands implements cloud.CommandService.
func (c *Commander) FindCommands(ctx context.Context, edgeID, cursor int64, limit int) ([]*cloud.EdgeCommand, error) {
	return c.cfg.Store.FindCommands(ctx, edgeID, cursor, limit)
}
