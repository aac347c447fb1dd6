package postgres

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"varco.dev/cloud"
)

var (
	_ cloud.CommunicationService = (*CommunicationService)(nil)
	_ cloud.Communicator         = (*CommunicationService)(nil)
)

// CommunicationService implements cloud.CommunicationService and
// cloud.Communicator with jobs in PostgreSQL (communications, messages),
// and is also the background worker that sends them: Start it once per
// process and Stop it at shutdown. It follows ImportService: a job is held
// by a lease, renewed with every batch; a stopping worker releases its job;
// a job whose process died is taken over when its lease expires.
//
// A job's members are planned in batches of BatchSize, each in one
// transaction that stores every member's message (pending) or skip, then
// the batch's pending messages are sent, Concurrency at once, each marked
// sent or failed with the gateway's id or error. A message is stored before
// it is sent and its row is unique per (dedup key, member): a member gets at
// most one message per dedup key, even from two jobs on two replicas. A
// process that dies mid-send leaves the message pending; the next worker
// sends it again under the same idempotency key, which the gateways use to
// drop the duplicate.
type CommunicationService struct {
	db *DB

	// The senders and settings below are read by the worker: set them
	// before Start. A nil sender fails the messages of its channel with
	// "sms gateway not configured" (and so on).
	Email cloud.EmailSender
	SMS   cloud.SMSSender
	Push  cloud.PushSender
	// UnsubscribeURL is the base of the e-mails' one-click unsubscribe
	// links; a message's token is appended after a "/". Empty: e-mails
	// carry no List-Unsubscribe.
	UnsubscribeURL string
	// BatchSize is how many members one transaction plans (default 100);
	// Concurrency how many messages are sent at once (default 8).
	BatchSize, Concurrency int
	// Lease is how long a job stays with its worker after a batch (default
	// 1 minute, longer than a send with all its retries); PollInterval how
	// often the worker looks for jobs nobody told it about (default 10s).
	Lease, PollInterval time.Duration
	// OnJobEnd, when set, is called after a job the worker ran ended.
	OnJobEnd func(c *cloud.Communication)
	// OnBatch, when set, is called after each planned batch with the number
	// of members planned; tests use it to interrupt a job.
	OnBatch func(id int64, processed int)

	owner string
	worker
}

// NewCommunicationService returns a CommunicationService on db; its worker
// is not started.
func NewCommunicationService(db *DB) *CommunicationService {
	return &CommunicationService{db: db, owner: "communicator-" + randomHex(8), worker: newWorker()}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func (s *CommunicationService) batchSize() int       { return cmp.Or(s.BatchSize, 100) }
func (s *CommunicationService) concurrency() int     { return cmp.Or(s.Concurrency, 8) }
func (s *CommunicationService) lease() time.Duration { return cmp.Or(s.Lease, time.Minute) }
func (s *CommunicationService) pollInterval() time.Duration {
	return cmp.Or(s.PollInterval, 10*time.Second)
}

// Start starts the background worker; it runs until Stop or until ctx ends.
func (s *CommunicationService) Start(ctx context.Context) error {
	s.start(ctx, s.pollInterval(), s.runPending)
	return nil
}

// Stop stops the worker and waits for it; the job in progress is released
// for the next worker, its unsent messages pending.
func (s *CommunicationService) Stop() { s.stop() }

// job is a claimed communication.
type job struct {
	id, tenantID, createdBy int64
	tmpl                    *cloud.Template
	delivery                cloud.Delivery
	purpose                 cloud.Purpose
	dedupKey                string
	memberIDs               []int64
	// owner is the lease_owner this run holds the job under: the worker's
	// name, or a name of its own for a Communicate call.
	owner string
}

const jobCols = `id, tenant_id, created_by, template, delivery, purpose, dedup_key, member_ids`

func scanJob(row pgx.Row) (*job, error) {
	var j job
	var tmpl []byte
	if err := row.Scan(&j.id, &j.tenantID, &j.createdBy, &tmpl, &j.delivery, &j.purpose, &j.dedupKey, &j.memberIDs); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(tmpl, &j.tmpl); err != nil {
		return nil, fmt.Errorf("communication %d template: %w", j.id, err)
	}
	return &j, nil
}

func (s *CommunicationService) runPending(ctx context.Context) {
	for ctx.Err() == nil {
		now := s.db.now()
		j, err := scanJob(s.db.Pool.QueryRow(ctx, `UPDATE communications SET status = 'running', lease_owner = $1, lease_until = $3,
			started_at = coalesce(started_at, $2), updated_at = $2
			WHERE id = (SELECT id FROM communications WHERE status IN ('queued', 'running') AND (lease_until IS NULL OR lease_until <= $2)
				ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING `+jobCols, s.owner, now, now.Add(s.lease())))
		if errors.Is(err, pgx.ErrNoRows) {
			return
		} else if err != nil {
			if ctx.Err() == nil {
				s.db.Logger.ErrorContext(ctx, "communication: claim a job", slog.Any("err", err))
			}
			return
		}
		j.owner = s.owner
		ended := s.runClaimed(ctx, j)
		if ended && s.OnJobEnd != nil {
			if c, err := s.find(context.WithoutCancel(ctx), j.tenantID, j.id); err == nil {
				s.OnJobEnd(c)
			}
		}
	}
}

// runClaimed runs a claimed job as the operator who created it and reports
// whether it ended; internal errors are counted against the job.
func (s *CommunicationService) runClaimed(ctx context.Context, j *job) bool {
	actor, err := scanOperator(s.db.Pool.QueryRow(ctx, `SELECT `+operatorCols+` FROM operators WHERE tenant_id = $1 AND id = $2`, j.tenantID, j.createdBy))
	if err == nil {
		var ended bool
		ended, err = s.run(ctx, actor, j)
		if err == nil || ctx.Err() != nil {
			return ended
		}
	}
	return s.failed(ctx, j, err)
}

// errLeaseLost stops a worker whose job was taken over.
var errLeaseLost = errors.New("the job's lease was lost")

// run sends a held job to the end: the pending messages left by a previous
// worker first, then batch after batch. On a cancelled ctx it releases the
// job. It returns whether the job ended here.
func (s *CommunicationService) run(ctx context.Context, actor *cloud.Operator, j *job) (bool, error) {
	log := s.db.Logger.With(slog.Int64("tenant_id", j.tenantID), slog.Int64("communication_id", j.id))
	log.InfoContext(ctx, "communication: running", slog.Int("members", len(j.memberIDs)))
	for {
		err := s.deliverPending(ctx, j)
		more := false
		if err == nil {
			more, err = s.plan(ctx, actor, j)
		}
		switch {
		case ctx.Err() != nil:
			s.release(j)
			return false, ctx.Err()
		case errors.Is(err, errLeaseLost):
			return false, nil // another worker has it now
		case err != nil:
			return false, err
		case !more:
			return s.finish(ctx, actor, j)
		}
	}
}

// plan stores the next batch's messages and skips with the job's progress,
// in one transaction. It reports false when every member was planned.
func (s *CommunicationService) plan(ctx context.Context, actor *cloud.Operator, j *job) (bool, error) {
	var processed int
	more := false
	err := s.db.inTxAs(ctx, actor, func(tx *Tx) error {
		var owner *string
		if err := tx.QueryRow(ctx, `SELECT processed, lease_owner FROM communications WHERE tenant_id = $1 AND id = $2 FOR UPDATE`,
			tx.tenant(), j.id).Scan(&processed, &owner); err != nil {
			return fmt.Errorf("lock communication %d: %w", j.id, err)
		}
		if owner == nil || *owner != j.owner {
			return errLeaseLost
		}
		if processed >= len(j.memberIDs) {
			return nil
		}
		more = true
		end := min(processed+s.batchSize(), len(j.memberIDs))
		ids := j.memberIDs[processed:end]
		club, err := tenantName(ctx, tx, tx.tenant())
		if err != nil {
			return err
		}
		recips, err := s.db.loadRecipients(ctx, tx, tx.tenant(), club, ids, tx.now)
		if err != nil {
			return err
		}
		var b messageBatch
		for _, id := range ids {
			r, ok := recips[id]
			if !ok {
				b.notFound++
				continue
			}
			out, skip := cloud.PlanMessage(j.tmpl, j.delivery, j.purpose, r)
			b.add(tx.tenant(), j, id, out, skip)
		}
		inserted, err := b.insert(ctx, tx, j, tx.now)
		if err != nil {
			return err
		}
		processed = end
		if _, err := tx.Exec(ctx, `UPDATE communications SET processed = $3, duplicates = duplicates + $4, not_found = not_found + $5,
			lease_until = $6, updated_at = $7 WHERE tenant_id = $1 AND id = $2`,
			tx.tenant(), j.id, end, len(b.members)-inserted, b.notFound, tx.now.Add(s.lease()), tx.now); err != nil {
			return fmt.Errorf("communication %d progress: %w", j.id, err)
		}
		return nil
	})
	if err == nil && more && s.OnBatch != nil {
		s.OnBatch(j.id, processed)
	}
	return more, err
}

func tenantName(ctx context.Context, q queryer, tenantID int64) (string, error) {
	var name string
	if err := q.QueryRow(ctx, `SELECT name FROM tenants WHERE id = $1`, tenantID).Scan(&name); err != nil {
		return "", fmt.Errorf("tenant %d: %w", tenantID, err)
	}
	return name, nil
}

// messageBatch is the rows of one planned batch, by column.
type messageBatch struct {
	members                                                       []int64
	channels, statuses, reasons, keys, recipients, subjects, errs []string
	payloads                                                      []*string
	unsubscribe                                                   []*string
	notFound                                                      int
}

func (b *messageBatch) add(tenantID int64, j *job, memberID int64, out *cloud.Outgoing, skip *cloud.Skip) {
	ch := j.delivery.TemplateChannel()
	status, reason, recipient, subject, detail := cloud.MessagePending, cloud.SkipReason(""), "", "", ""
	var payload, unsub *string
	if skip != nil {
		status, reason, detail = cloud.MessageSkipped, skip.Reason, skip.Detail
	} else {
		ch, recipient, subject = out.Channel, out.To, cmp.Or(out.Subject, out.Title)
		if ch == cloud.ChannelPush {
			recipient = "app" // the token is in the payload, not shown
		}
		p, _ := json.Marshal(out) // plain strings: cannot fail
		ps := string(p)
		payload = &ps
		if ch == cloud.ChannelEmail {
			tok := randomHex(16)
			unsub = &tok
		}
	}
	b.members = append(b.members, memberID)
	b.channels = append(b.channels, string(ch))
	b.statuses = append(b.statuses, string(status))
	b.reasons = append(b.reasons, string(reason))
	b.errs = append(b.errs, detail)
	b.keys = append(b.keys, cloud.IdempotencyKey(tenantID, j.dedupKey, memberID, ch))
	b.recipients = append(b.recipients, recipient)
	b.subjects = append(b.subjects, subject)
	b.payloads = append(b.payloads, payload)
	b.unsubscribe = append(b.unsubscribe, unsub)
}

// insert stores the batch; a member who already has a row for the dedup
// key (from this job's earlier try or another job) keeps it. It returns how
// many rows were new.
func (b *messageBatch) insert(ctx context.Context, tx *Tx, j *job, now time.Time) (int, error) {
	if len(b.members) == 0 {
		return 0, nil
	}
	tag, err := tx.Exec(ctx, `INSERT INTO messages (tenant_id, communication_id, dedup_key, purpose, created_at, updated_at,
			member_id, channel, status, skip_reason, error, idempotency_key, recipient, subject, payload, unsubscribe_token)
		SELECT $1, $2, $3, $4, $5, $5, u.member_id, u.channel, u.status, u.reason, u.error, u.key, u.recipient, u.subject, u.payload::jsonb, u.unsub
		FROM unnest($6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[])
			AS u (member_id, channel, status, reason, error, key, recipient, subject, payload, unsub)
		ON CONFLICT (tenant_id, dedup_key, member_id) DO NOTHING`,
		tx.tenant(), j.id, j.dedupKey, j.purpose, now, b.members, b.channels, b.statuses, b.reasons, b.errs, b.keys, b.recipients,
		b.subjects, b.payloads, b.unsubscribe)
	if err != nil {
		return 0, fmt.Errorf("communication %d messages: %w", j.id, err)
	}
	return int(tag.RowsAffected()), nil
}

// pendingMessage is a message claimed for a try.
type pendingMessage struct {
	id          int64
	key         string
	out         cloud.Outgoing
	unsubscribe *string
}

// deliverPending sends the job's pending messages, a batch at a time,
// while this worker holds the job.
func (s *CommunicationService) deliverPending(ctx context.Context, j *job) error {
	for {
		now := s.db.now()
		tag, err := s.db.Pool.Exec(ctx, `UPDATE communications SET lease_until = $4, updated_at = $3
			WHERE tenant_id = $1 AND id = $2 AND lease_owner = $5 AND status = 'running'`, j.tenantID, j.id, now, now.Add(s.lease()), j.owner)
		if err != nil {
			return fmt.Errorf("renew communication %d: %w", j.id, err)
		} else if tag.RowsAffected() == 0 {
			return errLeaseLost
		}
		rows, err := s.db.Pool.Query(ctx, `UPDATE messages SET attempts = attempts + 1, updated_at = $3
			WHERE id IN (SELECT id FROM messages WHERE communication_id = $2 AND tenant_id = $1 AND status = 'pending' ORDER BY id LIMIT $4)
			RETURNING id, idempotency_key, payload, unsubscribe_token`, j.tenantID, j.id, now, s.batchSize())
		if err != nil {
			return fmt.Errorf("claim messages of communication %d: %w", j.id, err)
		}
		msgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pendingMessage, error) {
			var m pendingMessage
			err := r.Scan(&m.id, &m.key, &m.out, &m.unsubscribe)
			return m, err
		})
		if err != nil {
			return fmt.Errorf("claim messages of communication %d: %w", j.id, err)
		}
		if len(msgs) == 0 {
			return nil
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, s.concurrency())
		for _, m := range msgs {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				s.deliver(ctx, j, m)
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// deliver sends one message and records the outcome. A send cut short by a
// stopping worker is left pending, to be sent again under the same key.
func (s *CommunicationService) deliver(ctx context.Context, j *job, m pendingMessage) {
	providerID, err := s.send(ctx, m)
	if ctx.Err() != nil && err != nil {
		return
	}
	status, errText := cloud.MessageSent, ""
	if err != nil {
		status, errText = cloud.MessageFailed, err.Error()
	}
	now := s.db.now()
	var sentAt *time.Time
	if status == cloud.MessageSent {
		sentAt = &now
	}
	rctx := context.WithoutCancel(ctx)
	if _, dberr := s.db.Pool.Exec(rctx, `UPDATE messages SET status = $3, provider_id = $4, error = $5, sent_at = $6, updated_at = $7
		WHERE tenant_id = $1 AND id = $2 AND status = 'pending'`, j.tenantID, m.id, status, providerID, errText, sentAt, now); dberr != nil {
		// Left pending: sent again later under the same idempotency key.
		s.db.Logger.ErrorContext(rctx, "communication: record a send", slog.Int64("message_id", m.id), slog.Any("err", dberr))
	}
	var se *cloud.SendError
	if errors.As(err, &se) && se.Unregistered {
		if _, dberr := s.db.Pool.Exec(rctx, `DELETE FROM member_push_tokens WHERE tenant_id = $1 AND token = $2`, j.tenantID, m.out.To); dberr != nil {
			s.db.Logger.ErrorContext(rctx, "communication: forget a push token", slog.Any("err", dberr))
		}
	}
	if err != nil {
		s.db.Logger.WarnContext(rctx, "communication: send failed", slog.Int64("communication_id", j.id), slog.Int64("message_id", m.id),
			slog.String("channel", string(m.out.Channel)), slog.Any("err", err))
	}
}

// send hands one message to its channel's sender.
func (s *CommunicationService) send(ctx context.Context, m pendingMessage) (string, error) {
	o := &m.out
	switch o.Channel {
	case cloud.ChannelEmail:
		if s.Email == nil {
			return "", cloud.NotConfigured(o.Channel)
		}
		e := &cloud.OutboundEmail{To: o.To, ToName: o.ToName, Subject: o.Subject, Text: o.Text, HTML: o.HTML, Language: o.Language,
			IdempotencyKey: m.key}
		if s.UnsubscribeURL != "" && m.unsubscribe != nil {
			e.UnsubscribeURL = strings.TrimSuffix(s.UnsubscribeURL, "/") + "/" + *m.unsubscribe
		}
		return s.Email.SendEmail(ctx, e)
	case cloud.ChannelSMS:
		if s.SMS == nil {
			return "", cloud.NotConfigured(o.Channel)
		}
		return s.SMS.SendSMS(ctx, &cloud.OutboundSMS{To: o.To, Text: o.Text, IdempotencyKey: m.key})
	case cloud.ChannelPush:
		if s.Push == nil {
			return "", cloud.NotConfigured(o.Channel)
		}
		return s.Push.SendPush(ctx, &cloud.OutboundPush{Token: o.To, Title: o.Title, Subtitle: o.Subtitle, Text: o.Text,
			ImageURL: o.ImageURL, Link: o.Link, IdempotencyKey: m.key})
	}
	return "", fmt.Errorf("unknown channel %q", o.Channel)
}

// finish ends a job whose members are all planned and messages all tried.
func (s *CommunicationService) finish(ctx context.Context, actor *cloud.Operator, j *job) (bool, error) {
	ended := false
	err := s.db.inTxAs(ctx, actor, func(tx *Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE communications SET status = 'done', lease_owner = NULL, lease_until = NULL, finished_at = $3, updated_at = $3
			WHERE tenant_id = $1 AND id = $2 AND lease_owner = $4
				AND NOT EXISTS (SELECT 1 FROM messages WHERE communication_id = $2 AND status = 'pending')`, tx.tenant(), j.id, tx.now, j.owner)
		if err != nil {
			return fmt.Errorf("finish communication %d: %w", j.id, err)
		}
		if ended = tag.RowsAffected() == 1; !ended {
			return nil
		}
		return tx.audit(ctx, "communication.done", "communication", j.id, nil)
	})
	return ended, err
}

// release gives a job back to the queue, for any worker to resume at once.
func (s *CommunicationService) release(j *job) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.db.Pool.Exec(ctx, `UPDATE communications SET lease_owner = NULL, lease_until = NULL
		WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3 AND status = 'running'`, j.tenantID, j.id, j.owner); err != nil {
		s.db.Logger.Error("communication: release a job", slog.Int64("communication_id", j.id), slog.Any("err", err))
		return
	}
	s.notify()
}

// failed counts an internal error against the job: it is retried after
// Lease, and failed for good after cloud.CommunicationMaxAttempts.
func (s *CommunicationService) failed(ctx context.Context, j *job, cause error) bool {
	ctx = context.WithoutCancel(ctx)
	s.db.Logger.ErrorContext(ctx, "communication: job failed", slog.Int64("communication_id", j.id), slog.Any("err", cause))
	now := s.db.now()
	var attempts int
	if err := s.db.Pool.QueryRow(ctx, `UPDATE communications SET attempts = attempts + 1, lease_owner = NULL, lease_until = $3, updated_at = $4
		WHERE tenant_id = $1 AND id = $2 AND status = 'running' RETURNING attempts`, j.tenantID, j.id, now.Add(s.lease()), now).Scan(&attempts); err != nil {
		s.db.Logger.ErrorContext(ctx, "communication: record a failed attempt", slog.Any("err", err))
		return false
	}
	if attempts < cloud.CommunicationMaxAttempts {
		return false
	}
	_, err := s.db.Pool.Exec(ctx, `UPDATE communications SET status = 'failed', failure = $3, finished_at = $4, lease_until = NULL
		WHERE tenant_id = $1 AND id = $2`, j.tenantID, j.id, fmt.Sprintf("The send stopped after %d internal errors.", attempts), now)
	if err != nil {
		s.db.Logger.ErrorContext(ctx, "communication: fail a job", slog.Any("err", err))
		return false
	}
	return true
}

// prepared is a send request checked against the database.
type prepared struct {
	tmpl     *cloud.Template
	delivery cloud.Delivery
	ids      []int64
}

// prepare checks req: the template is the tenant's and not archived, the
// channel fits it; member ids are deduplicated in order.
func (s *CommunicationService) prepare(ctx context.Context, op *cloud.Operator, req cloud.SendRequest) (*prepared, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	t, err := findTemplate(ctx, s.db.Pool, op.TenantID, req.TemplateID)
	if cloud.ErrorCode(err) == cloud.ENOTFOUND {
		return nil, cloud.Invalid("template_id", "Template not found.")
	} else if err != nil {
		return nil, err
	}
	if t.ArchivedAt != nil {
		return nil, cloud.Invalid("template_id", "The template is archived.")
	}
	d, err := cloud.ParseDelivery(string(req.Channel), t.Channel)
	if err != nil {
		return nil, err
	}
	if req.TargetID != nil {
		if req.MemberIDs, err = s.db.recipientsOf(ctx, op.TenantID, *req.TargetID, cloud.MaxRecipients); err != nil {
			return nil, err
		}
	}
	p := &prepared{tmpl: t, delivery: d, ids: make([]int64, 0, len(req.MemberIDs))}
	seen := make(map[int64]bool, len(req.MemberIDs))
	for _, id := range req.MemberIDs {
		if !seen[id] {
			seen[id] = true
			p.ids = append(p.ids, id)
		}
	}
	return p, nil
}

// PreviewCommunication plans req without storing or sending anything.
func (s *CommunicationService) PreviewCommunication(ctx context.Context, req cloud.SendRequest, first int) (*cloud.Preview, error) {
	op, err := cloud.RequireRole(ctx, senders...)
	if err != nil {
		return nil, err
	}
	p, err := s.prepare(ctx, op, req)
	if err != nil {
		return nil, err
	}
	club, err := tenantName(ctx, s.db.Pool, op.TenantID)
	if err != nil {
		return nil, err
	}
	pv := &cloud.Preview{Members: len(p.ids), Channels: map[cloud.Channel]int{}, SkipCounts: map[cloud.SkipReason]int{},
		Skips: []cloud.Skip{}, Messages: []cloud.PreviewMessage{}}
	skip := func(sk cloud.Skip) {
		pv.Skipped++
		pv.SkipCounts[sk.Reason]++
		if len(pv.Skips) < cloud.PreviewSkips {
			pv.Skips = append(pv.Skips, sk)
		}
	}
	now := s.db.now()
	for chunk := range slicesChunk(p.ids, 1000) {
		recips, err := s.db.loadRecipients(ctx, s.db.Pool, op.TenantID, club, chunk, now)
		if err != nil {
			return nil, err
		}
		sent := map[int64]bool{}
		if req.DedupKey != "" {
			rows, err := s.db.Pool.Query(ctx, `SELECT member_id FROM messages WHERE tenant_id = $1 AND dedup_key = $2 AND member_id = ANY($3)`,
				op.TenantID, req.DedupKey, chunk)
			if err != nil {
				return nil, fmt.Errorf("preview duplicates: %w", err)
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return nil, fmt.Errorf("preview duplicates: %w", err)
			}
			for _, id := range ids {
				sent[id] = true
			}
		}
		for _, id := range chunk {
			r, ok := recips[id]
			switch {
			case !ok:
				skip(cloud.Skip{MemberID: id, Reason: cloud.SkipNotFound, Detail: "No such member."})
				continue
			case sent[id]:
				skip(cloud.Skip{MemberID: id, Reason: cloud.SkipDuplicate, Detail: "Already sent under this dedup key."})
				continue
			}
			out, sk := cloud.PlanMessage(p.tmpl, p.delivery, req.Purpose, r)
			if sk != nil {
				skip(*sk)
				continue
			}
			pv.Channels[out.Channel]++
			if len(pv.Messages) < first {
				pm := cloud.PreviewMessage{MemberID: id, Outgoing: *out}
				if out.Channel == cloud.ChannelPush {
					pm.To = "app"
				}
				pv.Messages = append(pv.Messages, pm)
			}
		}
	}
	return pv, nil
}

func slicesChunk(ids []int64, n int) func(func([]int64) bool) {
	return func(yield func([]int64) bool) {
		for i := 0; i < len(ids); i += n {
			if !yield(ids[i:min(i+n, len(ids))]) {
				return
			}
		}
	}
}

// CreateCommunication stores req as a job for the background worker.
func (s *CommunicationService) CreateCommunication(ctx context.Context, req cloud.SendRequest) (*cloud.Communication, error) {
	op, err := cloud.RequireRole(ctx, senders...)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(req.DedupKey, cloud.ScheduleDedupPrefix) {
		// Such a send would stop a scheduled operation's messages for the
		// day and count in its run's history.
		return nil, cloud.Invalid("dedup_key", "Dedup keys starting with %q are the scheduled operations'.", cloud.ScheduleDedupPrefix)
	}
	id, err := s.create(ctx, op, req, "")
	if err != nil {
		return nil, err
	}
	s.notify()
	return s.find(ctx, op.TenantID, id)
}

// create stores a job, queued, or leased to inlineOwner when one is given
// (Communicate runs the job itself).
func (s *CommunicationService) create(ctx context.Context, op *cloud.Operator, req cloud.SendRequest, inlineOwner string) (int64, error) {
	p, err := s.prepare(ctx, op, req)
	if err != nil {
		return 0, err
	}
	tmpl, err := json.Marshal(p.tmpl)
	if err != nil {
		return 0, fmt.Errorf("template snapshot: %w", err)
	}
	dedup := cmp.Or(req.DedupKey, "direct:"+randomHex(12))
	var id int64
	err = s.db.inTxAs(ctx, op, func(tx *Tx) error {
		status, owner, until, started := cloud.CommQueued, (*string)(nil), (*time.Time)(nil), (*time.Time)(nil)
		if inlineOwner != "" {
			u := tx.now.Add(s.lease())
			status, owner, until, started = cloud.CommRunning, &inlineOwner, &u, &tx.now
		}
		if err := tx.QueryRow(ctx, `INSERT INTO communications (tenant_id, kind, status, template_id, template, delivery, purpose, dedup_key,
			target_id, member_ids, total, lease_owner, lease_until, created_by, created_at, updated_at, started_at)
			VALUES ($1, 'message', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15) RETURNING id`,
			tx.tenant(), status, p.tmpl.ID, tmpl, p.delivery, req.Purpose, dedup, req.TargetID, p.ids, len(p.ids), owner, until,
			tx.op.ID, tx.now, started).Scan(&id); err != nil {
			return mapErr(fmt.Errorf("insert communication: %w", err))
		}
		return tx.audit(ctx, "communication.create", "communication", id, map[string]any{"template_id": p.tmpl.ID,
			"channel": p.delivery, "purpose": req.Purpose, "members": len(p.ids), "dedup_key": dedup})
	})
	return id, err
}

// Communicate implements cloud.Communicator for the scheduler: it stores
// the communication as a job and sends it before returning, as the
// operator req names. If ctx ends first, the job is released and the
// background worker finishes it; the error is ctx's. A member already sent
// a message under req.DedupKey (by this or any other job) is counted as
// skipped and not sent again.
func (s *CommunicationService) Communicate(ctx context.Context, req cloud.CommunicationRequest) (cloud.CommunicationResult, error) {
	if req.DedupKey == "" {
		return cloud.CommunicationResult{}, cloud.Invalid("dedup_key", "A dedup key is required.")
	}
	op, err := scanOperator(s.db.Pool.QueryRow(ctx, `SELECT `+operatorCols+` FROM operators WHERE tenant_id = $1 AND id = $2`, req.TenantID, req.OperatorID))
	if err != nil {
		return cloud.CommunicationResult{}, cloud.Invalid("operator_id", "Operator %d not found in tenant %d.", req.OperatorID, req.TenantID)
	}
	if !op.Active {
		return cloud.CommunicationResult{}, cloud.Invalid("operator_id", "The sending operator is not active.")
	}
	owner := s.owner + "-call-" + randomHex(4)
	id, err := s.create(ctx, op, cloud.SendRequest{TemplateID: req.TemplateID, Channel: cloud.Delivery(req.Channel), Purpose: cloud.Purpose(req.Purpose),
		MemberIDs: req.MemberIDs, DedupKey: req.DedupKey}, owner)
	if err != nil {
		return cloud.CommunicationResult{}, err
	}
	j, err := scanJob(s.db.Pool.QueryRow(ctx, `SELECT `+jobCols+` FROM communications WHERE tenant_id = $1 AND id = $2`, req.TenantID, id))
	if err != nil {
		return cloud.CommunicationResult{}, fmt.Errorf("communication %d: %w", id, err)
	}
	j.owner = owner
	if _, err := s.run(ctx, op, j); err != nil {
		if ctx.Err() == nil {
			s.failed(ctx, j, err)
		}
		return cloud.CommunicationResult{}, err
	}
	c, err := s.find(ctx, req.TenantID, id)
	if err != nil {
		return cloud.CommunicationResult{}, err
	}
	return c.Result(), nil
}

// CreateCRMCommunication creates, in one transaction, an action of the
// requested type for every listed member that is not archived, through the
// same path as the bulk creation, and records it as a communication.
func (s *CommunicationService) CreateCRMCommunication(ctx context.Context, req cloud.CRMRequest) (*cloud.Communication, error) {
	op, err := cloud.RequireRole(ctx, senders...)
	if err != nil {
		return nil, err
	}
	switch {
	case req.TypeID <= 0:
		return nil, cloud.Invalid("type_id", "An action type is required.")
	case strings.TrimSpace(req.Text) == "":
		return nil, cloud.Invalid("text", "A text for the operators is required.")
	case req.TargetID != nil && len(req.MemberIDs) > 0:
		return nil, cloud.Invalid("target_id", "Give a target or a list of members, not both.")
	case req.TargetID != nil:
		if req.MemberIDs, err = s.db.recipientsOf(ctx, op.TenantID, *req.TargetID, MaxBulk); err != nil {
			return nil, err
		}
	}
	switch {
	case len(req.MemberIDs) == 0:
		return nil, cloud.Invalid("member_ids", "At least one member is required.")
	case len(req.MemberIDs) > MaxBulk:
		return nil, cloud.Invalid("member_ids", "At most %d members at once.", MaxBulk)
	}
	var id int64
	err = s.db.inTx(ctx, func(tx *Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, archived_at IS NOT NULL FROM members WHERE tenant_id = $1 AND id = ANY($2)`, tx.tenant(), req.MemberIDs)
		if err != nil {
			return fmt.Errorf("crm communication members: %w", err)
		}
		archived := map[int64]bool{}
		var mid int64
		var arch bool
		if _, err := pgx.ForEachRow(rows, []any{&mid, &arch}, func() error { archived[mid] = arch; return nil }); err != nil {
			return fmt.Errorf("crm communication members: %w", err)
		}
		var active []int64
		seen := map[int64]bool{}
		nArchived, nNotFound := 0, 0
		for _, mid := range req.MemberIDs {
			if seen[mid] {
				continue
			}
			seen[mid] = true
			arch, ok := archived[mid]
			switch {
			case !ok:
				nNotFound++
			case arch:
				nArchived++
			default:
				active = append(active, mid)
			}
		}
		created := 0
		if len(active) > 0 {
			acts, err := bulkInsertActions(ctx, tx, &cloud.Action{TypeID: req.TypeID, Description: req.Text, Purpose: req.Purpose,
				CompleteBy: req.CompleteBy, OperatorID: req.OperatorID, Tags: req.Tags}, active)
			if err != nil {
				return err
			}
			created = len(acts)
		}
		if err := tx.QueryRow(ctx, `INSERT INTO communications (tenant_id, kind, status, purpose, dedup_key, member_ids, total, processed,
			actions, archived, not_found, created_by, created_at, updated_at, started_at, finished_at)
			VALUES ($1, 'crm', 'done', $2, $3, $4, $5, $5, $6, $7, $8, $9, $10, $10, $10, $10) RETURNING id`,
			tx.tenant(), req.Purpose, "crm:"+randomHex(12), req.MemberIDs, len(req.MemberIDs), created, nArchived, nNotFound, tx.op.ID,
			tx.now).Scan(&id); err != nil {
			return mapErr(fmt.Errorf("insert crm communication: %w", err))
		}
		return tx.audit(ctx, "communication.crm", "communication", id, map[string]any{"type_id": req.TypeID, "actions": created})
	})
	if err != nil {
		return nil, err
	}
	return s.find(ctx, op.TenantID, id)
}

const communicationCols = `id, tenant_id, kind, status, template_id, delivery, purpose, dedup_key, target_id, total, processed,
	duplicates, not_found, actions, archived, failure, created_by, created_at, started_at, finished_at`

type commRow struct {
	c                             cloud.Communication
	duplicates, notFound, archive int
}

func scanCommunication(row pgx.Row) (*commRow, error) {
	var r commRow
	c := &r.c
	err := row.Scan(&c.ID, &c.TenantID, &c.Kind, &c.Status, &c.TemplateID, &c.Delivery, &c.Purpose, &c.DedupKey, &c.TargetID, &c.Members,
		&c.Processed, &r.duplicates, &r.notFound, &c.Actions, &r.archive, &c.Failure, &c.CreatedBy, &c.CreatedAt, &c.StartedAt, &c.FinishedAt)
	return &r, err
}

// withCounts adds the message counts to communications of one tenant.
func (s *CommunicationService) withCounts(ctx context.Context, tenantID int64, rs []*commRow) ([]*cloud.Communication, error) {
	out := make([]*cloud.Communication, len(rs))
	byID := make(map[int64]*cloud.Communication, len(rs))
	ids := make([]int64, len(rs))
	for i, r := range rs {
		c := &r.c
		c.SkipCounts = map[cloud.SkipReason]int{}
		for reason, n := range map[cloud.SkipReason]int{cloud.SkipDuplicate: r.duplicates, cloud.SkipNotFound: r.notFound, cloud.SkipArchived: r.archive} {
			if n > 0 {
				c.SkipCounts[reason] += n
				c.Skipped += n
			}
		}
		out[i], byID[c.ID], ids[i] = c, c, c.ID
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT communication_id, status, skip_reason, count(*) FROM messages
		WHERE tenant_id = $1 AND communication_id = ANY($2) GROUP BY 1, 2, 3`, tenantID, ids)
	if err != nil {
		return nil, fmt.Errorf("communication counts: %w", err)
	}
	var (
		id     int64
		status cloud.MessageStatus
		reason cloud.SkipReason
		n      int
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &status, &reason, &n}, func() error {
		c := byID[id]
		switch status {
		case cloud.MessageSent:
			c.Sent += n
		case cloud.MessageFailed:
			c.Failed += n
		case cloud.MessagePending:
			c.Pending += n
		case cloud.MessageSkipped:
			c.Skipped += n
			c.SkipCounts[reason] += n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("communication counts: %w", err)
	}
	return out, nil
}

func (s *CommunicationService) find(ctx context.Context, tenantID, id int64) (*cloud.Communication, error) {
	r, err := scanCommunication(s.db.Pool.QueryRow(ctx, `SELECT `+communicationCols+` FROM communications WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return nil, notFound(err, "Communication")
	}
	cs, err := s.withCounts(ctx, tenantID, []*commRow{r})
	if err != nil {
		return nil, err
	}
	return cs[0], nil
}

// FindCommunicationByID returns one of the tenant's communications with
// its progress.
func (s *CommunicationService) FindCommunicationByID(ctx context.Context, id int64) (*cloud.Communication, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	return s.find(ctx, op.TenantID, id)
}

// FindCommunications lists the tenant's communications, newest first.
func (s *CommunicationService) FindCommunications(ctx context.Context, cursor int64, limit int) ([]*cloud.Communication, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+communicationCols+` FROM communications WHERE tenant_id = $1 AND ($2 = 0 OR id < $2)
		ORDER BY id DESC LIMIT $3`, op.TenantID, cursor, limitOf(limit, 50, 500))
	if err != nil {
		return nil, fmt.Errorf("find communications: %w", err)
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*commRow, error) { return scanCommunication(r) })
	if err != nil {
		return nil, fmt.Errorf("find communications: %w", err)
	}
	return s.withCounts(ctx, op.TenantID, rs)
}

// FindMessages pages through the messages of a communication or a member,
// newest first.
func (s *CommunicationService) FindMessages(ctx context.Context, f cloud.MessageFilter) ([]*cloud.Message, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT id, tenant_id, communication_id, member_id, channel, purpose, status, skip_reason, recipient, subject,
			provider_id, error, attempts, created_at, sent_at
		FROM messages WHERE tenant_id = $1 AND ($2 = 0 OR communication_id = $2) AND ($3 = 0 OR member_id = $3) AND ($4 = 0 OR id < $4)
		ORDER BY id DESC LIMIT $5`, op.TenantID, f.CommunicationID, f.MemberID, f.Cursor, limitOf(f.Limit, 50, 500))
	if err != nil {
		return nil, fmt.Errorf("find messages: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Message, error) {
		var m cloud.Message
		err := r.Scan(&m.ID, &m.TenantID, &m.CommunicationID, &m.MemberID, &m.Channel, &m.Purpose, &m.Status, &m.SkipReason, &m.To,
			&m.Subject, &m.ProviderID, &m.Error, &m.Attempts, &m.CreatedAt, &m.SentAt)
		return &m, err
	})
}

// RegisterPushToken records (or moves to memberID) an app installation.
func (s *CommunicationService) RegisterPushToken(ctx context.Context, memberID int64, token, platform string) error {
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 4096 {
		return cloud.Invalid("token", "A push token of at most 4096 characters is required.")
	}
	switch platform {
	case "android", "ios", "web":
	default:
		return cloud.Invalid("platform", "Platform must be android, ios or web.")
	}
	return s.db.inTx(ctx, func(tx *Tx) error {
		m, err := findMember(ctx, tx, tx.tenant(), memberID, false)
		if err != nil {
			return err
		}
		if m.ArchivedAt != nil {
			return cloud.Errorf(cloud.ECONFLICT, "The member is archived.")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO member_push_tokens (tenant_id, member_id, token, platform, created_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant_id, token) DO UPDATE SET member_id = $2, platform = $4, created_at = $5`,
			tx.tenant(), memberID, token, platform, tx.now); err != nil {
			return mapErr(fmt.Errorf("push token: %w", err))
		}
		return tx.audit(ctx, "member.push_token", "member", memberID, map[string]any{"platform": platform})
	})
}

// Unsubscribe withdraws the consent to e-mails for the purpose of the
// message whose unsubscribe token is given (RFC 8058 one-click). The token
// is the only credential: 128 random bits, one per e-mail.
func (s *CommunicationService) Unsubscribe(ctx context.Context, token string) error {
	var tenantID, memberID int64
	var purpose cloud.Purpose
	if err := s.db.Pool.QueryRow(ctx, `SELECT tenant_id, member_id, purpose FROM messages WHERE unsubscribe_token = $1`, token).
		Scan(&tenantID, &memberID, &purpose); err != nil {
		return notFound(err, "Unsubscribe link")
	}
	return s.db.inTxAs(ctx, &cloud.Operator{TenantID: tenantID}, func(tx *Tx) error {
		m, err := findMember(ctx, tx, tenantID, memberID, true)
		if err != nil {
			return err
		}
		if !m.HasConsent(cloud.ChannelEmail, purpose) {
			return nil // already withdrawn: one-click is idempotent
		}
		for i := range m.Consents {
			if c := &m.Consents[i]; c.Channel == cloud.ChannelEmail && c.Purpose == purpose {
				c.Granted, c.At = false, tx.now
			}
		}
		m.Version++
		m.UpdatedAt = tx.now
		if err := saveMember(ctx, tx, m); err != nil {
			return err
		}
		return tx.audit(ctx, "member.unsubscribe", "member", memberID, map[string]any{"channel": cloud.ChannelEmail, "purpose": purpose})
	})
}

// recipientsOf returns the members a target selects today, in the
// tenant's time zone: at most limit, or EINVALID naming target_id.
func (db *DB) recipientsOf(ctx context.Context, tenantID, targetID int64, limit int) ([]int64, error) {
	t, err := findTarget(ctx, db.Pool, tenantID, targetID)
	if cloud.ErrorCode(err) == cloud.ENOTFOUND {
		return nil, cloud.Invalid("target_id", "Target not found.")
	} else if err != nil {
		return nil, err
	}
	day, _, err := db.tenantToday(ctx, db.Pool, tenantID)
	if err != nil {
		return nil, err
	}
	ids, err := db.targetMemberIDs(ctx, db.Pool, tenantID, &t.TargetDefinition, day, limit)
	if err != nil {
		return nil, err
	}
	switch {
	case len(ids) > limit:
		return nil, cloud.Invalid("target_id", "The target selects more than %d members: narrow it.", limit)
	case len(ids) == 0:
		return nil, cloud.Invalid("target_id", "The target selects no member today.")
	}
	return ids, nil
}
