package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"varco.dev/cloud"
)

var _ cloud.TemplateService = (*TemplateService)(nil)

// TemplateService implements cloud.TemplateService.
type TemplateService struct{ db *DB }

// NewTemplateService returns a TemplateService on db.
func NewTemplateService(db *DB) *TemplateService { return &TemplateService{db: db} }

// senders are the roles that write templates and send communications.
var senders = []cloud.Role{cloud.RoleAdmin, cloud.RoleCRMManager}

const templateCols = `id, tenant_id, name, channel, subject, text, html, title, subtitle, image_url, link, sms_text, created_by,
	archived_at, version, created_at, updated_at`

func scanTemplate(row pgx.Row) (*cloud.Template, error) {
	var t cloud.Template
	err := row.Scan(&t.ID, &t.TenantID, &t.Name, &t.Channel, &t.Subject, &t.Text, &t.HTML, &t.Title, &t.Subtitle, &t.ImageURL,
		&t.Link, &t.SMSText, &t.CreatedBy, &t.ArchivedAt, &t.Version, &t.CreatedAt, &t.UpdatedAt)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateTemplate validates and stores a template.
func (s *TemplateService) CreateTemplate(ctx context.Context, t *cloud.Template) error {
	if _, err := cloud.RequireRole(ctx, senders...); err != nil {
		return err
	}
	if err := t.Validate(); err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx *Tx) error {
		t.TenantID, t.CreatedBy, t.Version, t.CreatedAt, t.UpdatedAt, t.ArchivedAt = tx.tenant(), tx.op.ID, 1, tx.now, tx.now, nil
		if err := tx.QueryRow(ctx, `INSERT INTO message_templates (tenant_id, name, channel, subject, text, html, title, subtitle,
			image_url, link, sms_text, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
			RETURNING id`, t.TenantID, t.Name, t.Channel, t.Subject, t.Text, t.HTML, t.Title, t.Subtitle, t.ImageURL, t.Link, t.SMSText,
			t.CreatedBy, tx.now).Scan(&t.ID); err != nil {
			return mapErr(fmt.Errorf("insert template: %w", err))
		}
		return tx.audit(ctx, "template.create", "template", t.ID, map[string]any{"name": t.Name, "channel": t.Channel})
	})
}

func findTemplate(ctx context.Context, q queryer, tenantID, id int64) (*cloud.Template, error) {
	t, err := scanTemplate(q.QueryRow(ctx, `SELECT `+templateCols+` FROM message_templates WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return nil, notFound(err, "Template")
	}
	return t, nil
}

// FindTemplateByID returns one of the tenant's templates.
func (s *TemplateService) FindTemplateByID(ctx context.Context, id int64) (*cloud.Template, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	return findTemplate(ctx, s.db.Pool, op.TenantID, id)
}

// FindTemplates lists the tenant's templates that are not archived.
func (s *TemplateService) FindTemplates(ctx context.Context, channel cloud.Channel) ([]*cloud.Template, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+templateCols+` FROM message_templates
		WHERE tenant_id = $1 AND archived_at IS NULL AND ($2 = '' OR channel = $2) ORDER BY lower(name), id`, op.TenantID, channel)
	if err != nil {
		return nil, fmt.Errorf("find templates: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Template, error) { return scanTemplate(r) })
}

// UpdateTemplate edits a template that is not archived.
func (s *TemplateService) UpdateTemplate(ctx context.Context, id int64, version int, upd cloud.TemplateUpdate) (*cloud.Template, error) {
	return s.edit(ctx, id, version, "template.update", upd, func(t *cloud.Template) error {
		upd.Apply(t)
		return t.Validate()
	})
}

// ArchiveTemplate hides a template from lists and new sends.
func (s *TemplateService) ArchiveTemplate(ctx context.Context, id int64, version int) (*cloud.Template, error) {
	return s.edit(ctx, id, version, "template.archive", nil, func(t *cloud.Template) error {
		now := s.db.now()
		t.ArchivedAt = &now
		return nil
	})
}

// edit applies change to a locked template of the current version and
// saves it, audited as action.
func (s *TemplateService) edit(ctx context.Context, id int64, version int, action string, data any, change func(*cloud.Template) error) (*cloud.Template, error) {
	if _, err := cloud.RequireRole(ctx, senders...); err != nil {
		return nil, err
	}
	var t *cloud.Template
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if t, err = lockVersioned(ctx, tx, "message_templates", templateCols, id, "Template", version, scanTemplate); err != nil {
			return err
		}
		if t.ArchivedAt != nil {
			return cloud.Errorf(cloud.ECONFLICT, "The template is archived.")
		}
		if err := change(t); err != nil {
			return err
		}
		t.Version++
		t.UpdatedAt = tx.now
		if _, err := tx.Exec(ctx, `UPDATE message_templates SET name = $3, subject = $4, text = $5, html = $6, title = $7, subtitle = $8,
			image_url = $9, link = $10, sms_text = $11, archived_at = $12, version = $13, updated_at = $14 WHERE tenant_id = $1 AND id = $2`,
			tx.tenant(), id, t.Name, t.Subject, t.Text, t.HTML, t.Title, t.Subtitle, t.ImageURL, t.Link, t.SMSText, t.ArchivedAt,
			t.Version, tx.now); err != nil {
			return mapErr(fmt.Errorf("update template: %w", err))
		}
		return tx.audit(ctx, action, "template", id, data)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}
