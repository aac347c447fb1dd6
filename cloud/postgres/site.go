package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"varco.dev/cloud"
)

var _ cloud.SiteService = (*SiteService)(nil)

// SiteService implements cloud.SiteService.
type SiteService struct{ db *DB }

// NewSiteService returns a SiteService on db.
func NewSiteService(db *DB) *SiteService { return &SiteService{db: db} }

const siteCols = `id, tenant_id, name, timezone, version, created_at, updated_at`

func scanSite(row pgx.Row) (*cloud.Site, error) {
	var s cloud.Site
	err := row.Scan(&s.ID, &s.TenantID, &s.Name, &s.Timezone, &s.Version, &s.CreatedAt, &s.UpdatedAt)
	return &s, err
}

const gateCols = `id, tenant_id, site_id, name, device_type, version, created_at, updated_at`

func scanGate(row pgx.Row) (*cloud.Gate, error) {
	var g cloud.Gate
	err := row.Scan(&g.ID, &g.TenantID, &g.SiteID, &g.Name, &g.DeviceType, &g.Version, &g.CreatedAt, &g.UpdatedAt)
	return &g, err
}

// CreateSite creates a site; admins only.
func (s *SiteService) CreateSite(ctx context.Context, site *cloud.Site) error {
	if _, err := cloud.RequireRole(ctx, cloud.RoleAdmin); err != nil {
		return err
	}
	if err := site.Validate(); err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx *Tx) error {
		site.TenantID, site.Version, site.CreatedAt, site.UpdatedAt = tx.tenant(), 1, tx.now, tx.now
		if err := tx.QueryRow(ctx, `INSERT INTO sites (tenant_id, name, timezone, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id`,
			tx.tenant(), site.Name, site.Timezone, tx.now).Scan(&site.ID); err != nil {
			return mapErr(fmt.Errorf("insert site: %w", err))
		}
		return tx.audit(ctx, "site.create", "site", site.ID, site)
	})
}

// FindSites lists the tenant's sites.
func (s *SiteService) FindSites(ctx context.Context) ([]*cloud.Site, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+siteCols+` FROM sites WHERE tenant_id = $1 ORDER BY id`, op.TenantID)
	if err != nil {
		return nil, fmt.Errorf("find sites: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Site, error) { return scanSite(r) })
}

// FindSiteByID returns one of the tenant's sites.
func (s *SiteService) FindSiteByID(ctx context.Context, id int64) (*cloud.Site, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	site, err := scanSite(s.db.Pool.QueryRow(ctx, `SELECT `+siteCols+` FROM sites WHERE tenant_id = $1 AND id = $2`, op.TenantID, id))
	if err != nil {
		return nil, notFound(err, "Site")
	}
	return site, nil
}

// UpdateSite changes a site; admins only.
func (s *SiteService) UpdateSite(ctx context.Context, id int64, version int, upd cloud.SiteUpdate) (*cloud.Site, error) {
	if _, err := cloud.RequireRole(ctx, cloud.RoleAdmin); err != nil {
		return nil, err
	}
	var site *cloud.Site
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if site, err = lockVersioned(ctx, tx, "sites", siteCols, id, "Site", version, scanSite); err != nil {
			return err
		}
		if upd.Name != nil {
			site.Name = *upd.Name
		}
		if upd.Timezone != nil {
			site.Timezone = *upd.Timezone
		}
		if err := site.Validate(); err != nil {
			return err
		}
		site.Version++
		site.UpdatedAt = tx.now
		if _, err := tx.Exec(ctx, `UPDATE sites SET name = $3, timezone = $4, version = $5, updated_at = $6 WHERE tenant_id = $1 AND id = $2`,
			tx.tenant(), id, site.Name, site.Timezone, site.Version, tx.now); err != nil {
			return mapErr(fmt.Errorf("update site: %w", err))
		}
		return tx.audit(ctx, "site.update", "site", id, upd)
	})
	if err != nil {
		return nil, err
	}
	return site, nil
}

// CreateGate creates a gate at one of the tenant's sites; admins only.
func (s *SiteService) CreateGate(ctx context.Context, g *cloud.Gate) error {
	if _, err := cloud.RequireRole(ctx, cloud.RoleAdmin); err != nil {
		return err
	}
	if err := g.Validate(); err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx *Tx) error {
		g.TenantID, g.Version, g.CreatedAt, g.UpdatedAt = tx.tenant(), 1, tx.now, tx.now
		if err := tx.QueryRow(ctx, `INSERT INTO gates (tenant_id, site_id, name, device_type, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id`,
			tx.tenant(), g.SiteID, g.Name, g.DeviceType, tx.now).Scan(&g.ID); err != nil {
			return mapErr(fmt.Errorf("insert gate: %w", err))
		}
		return tx.audit(ctx, "gate.create", "gate", g.ID, g)
	})
}

// FindGates lists the tenant's gates, of one site when siteID > 0.
func (s *SiteService) FindGates(ctx context.Context, siteID int64) ([]*cloud.Gate, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+gateCols+` FROM gates WHERE tenant_id = $1 AND ($2 = 0 OR site_id = $2) ORDER BY id`, op.TenantID, siteID)
	if err != nil {
		return nil, fmt.Errorf("find gates: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Gate, error) { return scanGate(r) })
}

// FindGateByID returns one of the tenant's gates.
func (s *SiteService) FindGateByID(ctx context.Context, id int64) (*cloud.Gate, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	g, err := scanGate(s.db.Pool.QueryRow(ctx, `SELECT `+gateCols+` FROM gates WHERE tenant_id = $1 AND id = $2`, op.TenantID, id))
	if err != nil {
		return nil, notFound(err, "Gate")
	}
	return g, nil
}

// UpdateGate changes a gate; admins only.
func (s *SiteService) UpdateGate(ctx context.Context, id int64, version int, upd cloud.GateUpdate) (*cloud.Gate, error) {
	if _, err := cloud.RequireRole(ctx, cloud.RoleAdmin); err != nil {
		return nil, err
	}
	var g *cloud.Gate
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if g, err = lockVersioned(ctx, tx, "gates", gateCols, id, "Gate", version, scanGate); err != nil {
			return err
		}
		if upd.Name != nil {
			g.Name = *upd.Name
		}
		if upd.DeviceType != nil {
			g.DeviceType = *upd.DeviceType
		}
		if err := g.Validate(); err != nil {
			return err
		}
		g.Version++
		g.UpdatedAt = tx.now
		if _, err := tx.Exec(ctx, `UPDATE gates SET name = $3, device_type = $4, version = $5, updated_at = $6 WHERE tenant_id = $1 AND id = $2`,
			tx.tenant(), id, g.Name, g.DeviceType, g.Version, tx.now); err != nil {
			return mapErr(fmt.Errorf("update gate: %w", err))
		}
		return tx.audit(ctx, "gate.update", "gate", id, upd)
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}
