package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"varco.dev/cloud"
)

var _ cloud.MemberService = (*MemberService)(nil)

// MemberService implements cloud.MemberService.
type MemberService struct{ db *DB }

// NewMemberService returns a MemberService on db.
func NewMemberService(db *DB) *MemberService { return &MemberService{db: db} }

const memberCols = `id, tenant_id, kind, first_name, last_name, birth_date, tax_code, company_name, vat_number, legal_rep_id,
	email, mobile, phone, language, consents, tags, commercial_status_id, operator_id, medical_cert_expiry, suspended,
	archived_at, version, created_at, updated_at, last_visit_at`

func scanMember(row pgx.Row) (*cloud.Member, error) {
	var m cloud.Member
	var birth, cert *time.Time
	err := row.Scan(&m.ID, &m.TenantID, &m.Kind, &m.FirstName, &m.LastName, &birth, &m.TaxCode, &m.CompanyName, &m.VATNumber,
		&m.LegalRepID, &m.Email, &m.Mobile, &m.Phone, &m.Language, &m.Consents, &m.Tags, &m.CommercialStatusID, &m.OperatorID,
		&cert, &m.Suspended, &m.ArchivedAt, &m.Version, &m.CreatedAt, &m.UpdatedAt, &m.LastVisitAt)
	if err != nil {
		return nil, err
	}
	m.BirthDate, m.MedicalCertExpiry = dateOf(birth), dateOf(cert)
	return &m, nil
}

// checkMemberRefs checks what foreign keys cannot: the legal representative
// is a person and not the company itself.
func checkMemberRefs(ctx context.Context, tx *Tx, m *cloud.Member) error {
	if m.LegalRepID == nil {
		return nil
	}
	if *m.LegalRepID == m.ID {
		return cloud.Invalid("legal_rep_id", "A company cannot represent itself.")
	}
	var kind string
	err := tx.QueryRow(ctx, `SELECT kind FROM members WHERE tenant_id = $1 AND id = $2`, tx.tenant(), *m.LegalRepID).Scan(&kind)
	if err != nil {
		if cloud.ErrorCode(notFound(err, "")) == cloud.ENOTFOUND {
			return cloud.Invalid("legal_rep_id", "Legal representative not found.")
		}
		return fmt.Errorf("find legal representative: %w", err)
	}
	if kind != string(cloud.KindPerson) {
		return cloud.Invalid("legal_rep_id", "The legal representative must be a person.")
	}
	return nil
}

func insertMember(ctx context.Context, tx *Tx, m *cloud.Member) error {
	if err := m.Validate(cloud.DateOf(tx.now)); err != nil {
		return err
	}
	if err := checkMemberRefs(ctx, tx, m); err != nil {
		return err
	}
	m.TenantID, m.Version, m.CreatedAt, m.UpdatedAt, m.ArchivedAt = tx.tenant(), 1, tx.now, tx.now, nil
	for i := range m.Consents {
		if m.Consents[i].At.IsZero() {
			m.Consents[i].At = tx.now
		}
	}
	err := tx.QueryRow(ctx, `INSERT INTO members (tenant_id, kind, first_name, last_name, birth_date, tax_code, company_name,
		vat_number, legal_rep_id, email, mobile, phone, language, consents, tags, commercial_status_id, operator_id,
		medical_cert_expiry, suspended, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20) RETURNING id`,
		m.TenantID, m.Kind, m.FirstName, m.LastName, dateArg(m.BirthDate), m.TaxCode, m.CompanyName, m.VATNumber, m.LegalRepID,
		m.Email, m.Mobile, m.Phone, m.Language, m.Consents, m.Tags, m.CommercialStatusID, m.OperatorID,
		dateArg(m.MedicalCertExpiry), m.Suspended, tx.now).Scan(&m.ID)
	if err != nil {
		return mapErr(fmt.Errorf("insert member: %w", err))
	}
	return tx.audit(ctx, "member.create", "member", m.ID, map[string]any{"name": m.DisplayName()})
}

// CreateMember creates a member.
func (s *MemberService) CreateMember(ctx context.Context, m *cloud.Member) error {
	return s.db.inTx(ctx, func(tx *Tx) error { return insertMember(ctx, tx, m) })
}

// FindMemberByID returns one of the tenant's members, archived ones included.
func (s *MemberService) FindMemberByID(ctx context.Context, id int64) (*cloud.Member, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	return findMember(ctx, s.db.Pool, op.TenantID, id, false)
}

func findMember(ctx context.Context, q queryer, tenantID, id int64, forUpdate bool) (*cloud.Member, error) {
	sql := `SELECT ` + memberCols + ` FROM members WHERE tenant_id = $1 AND id = $2`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	m, err := scanMember(q.QueryRow(ctx, sql, tenantID, id))
	if err != nil {
		return nil, notFound(err, "Member")
	}
	return m, nil
}

// FindMembers searches the tenant's members.
func (s *MemberService) FindMembers(ctx context.Context, f cloud.MemberFilter) ([]*cloud.Member, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	q := strings.ToLower(strings.TrimSpace(f.Query))
	if len(q) > 100 {
		return nil, cloud.Invalid("q", "Search text is at most 100 characters.")
	}
	like := ""
	if q != "" {
		like = "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q) + "%"
	}
	// Only the filters in use go into the SQL, and the query is planned for
	// its values each time (QueryExecModeExec): a cached generic plan for
	// "search LIKE $3" walks the primary key and filters 100k rows instead
	// of using the trigram index.
	where, args := []string{"tenant_id = $1", "id > $2"}, []any{op.TenantID, f.Cursor}
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if like != "" {
		add("search LIKE $%d", like)
	}
	if f.Tag != "" {
		add("tags @> ARRAY[$%d]", f.Tag)
	}
	if f.CommercialStatusID != 0 {
		add("commercial_status_id = $%d", f.CommercialStatusID)
	}
	if f.OperatorID != 0 {
		add("operator_id = $%d", f.OperatorID)
	}
	if !f.IncludeArchived {
		where = append(where, "archived_at IS NULL")
	}
	args = append(args, limitOf(f.Limit, 50, 1000))
	args = append([]any{pgx.QueryExecModeExec}, args...)
	rows, err := s.db.Pool.Query(ctx, `SELECT `+memberCols+` FROM members WHERE `+strings.Join(where, " AND ")+
		fmt.Sprintf(` ORDER BY id LIMIT $%d`, len(args)-1), args...)
	if err != nil {
		return nil, fmt.Errorf("find members: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Member, error) { return scanMember(r) })
}

// UpdateMember changes a member.
func (s *MemberService) UpdateMember(ctx context.Context, id int64, version int, upd cloud.MemberUpdate) (*cloud.Member, error) {
	var m *cloud.Member
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if m, err = findMember(ctx, tx, tx.tenant(), id, true); err != nil {
			return err
		}
		if err := checkVersion("member", m.Version, version); err != nil {
			return err
		}
		before := *m
		upd.Apply(m)
		if err := m.Validate(cloud.DateOf(tx.now)); err != nil {
			return err
		}
		if err := checkMemberRefs(ctx, tx, m); err != nil {
			return err
		}
		for i := range m.Consents {
			if m.Consents[i].At.IsZero() || before.HasConsent(m.Consents[i].Channel, m.Consents[i].Purpose) != m.Consents[i].Granted {
				m.Consents[i].At = tx.now
			}
		}
		m.Version++
		m.UpdatedAt = tx.now
		if err := saveMember(ctx, tx, m); err != nil {
			return err
		}
		return tx.audit(ctx, "member.update", "member", id, upd)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func saveMember(ctx context.Context, tx *Tx, m *cloud.Member) error {
	_, err := tx.Exec(ctx, `UPDATE members SET first_name = $3, last_name = $4, birth_date = $5, tax_code = $6, company_name = $7,
		vat_number = $8, legal_rep_id = $9, email = $10, mobile = $11, phone = $12, language = $13, consents = $14, tags = $15,
		commercial_status_id = $16, operator_id = $17, medical_cert_expiry = $18, suspended = $19, archived_at = $20,
		version = $21, updated_at = $22 WHERE tenant_id = $1 AND id = $2`,
		tx.tenant(), m.ID, m.FirstName, m.LastName, dateArg(m.BirthDate), m.TaxCode, m.CompanyName, m.VATNumber, m.LegalRepID,
		m.Email, m.Mobile, m.Phone, m.Language, m.Consents, m.Tags, m.CommercialStatusID, m.OperatorID,
		dateArg(m.MedicalCertExpiry), m.Suspended, m.ArchivedAt, m.Version, m.UpdatedAt)
	if err != nil {
		return mapErr(fmt.Errorf("update member: %w", err))
	}
	return nil
}

// ArchiveMember archives a member.
func (s *MemberService) ArchiveMember(ctx context.Context, id int64, version int) (*cloud.Member, error) {
	var m *cloud.Member
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if m, err = findMember(ctx, tx, tx.tenant(), id, true); err != nil {
			return err
		}
		if err := checkVersion("member", m.Version, version); err != nil {
			return err
		}
		if m.ArchivedAt != nil {
			return cloud.Errorf(cloud.ECONFLICT, "The member is already archived.")
		}
		m.ArchivedAt = &tx.now
		m.Version++
		m.UpdatedAt = tx.now
		if err := saveMember(ctx, tx, m); err != nil {
			return err
		}
		return tx.audit(ctx, "member.archive", "member", id, nil)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// importRow creates the member of one parsed CSV row, and its credential,
// in a savepoint of tx, so that a refused row leaves the others in place.
// It returns the row's EINVALID or ECONFLICT error, or an internal error.
func importRow(ctx context.Context, tx *Tx, row cloud.MemberImportRow) error {
	if row.Err != nil {
		return row.Err
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	defer func() { _ = sp.Rollback(ctx) }()
	stx := &Tx{Tx: sp, db: tx.db, now: tx.now, op: tx.op}
	m := row.Member
	if err := insertMember(ctx, stx, &m); err != nil {
		return err
	}
	if row.Credential != "" {
		c := cloud.Credential{MemberID: m.ID, Key: row.Credential}
		if err := insertCredential(ctx, stx, &c); err != nil {
			return err
		}
	}
	if err := sp.Commit(ctx); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

const credentialCols = `id, tenant_id, member_id, key, kind, label, valid_from, valid_until, disabled, version, created_at`

func scanCredential(row pgx.Row) (*cloud.Credential, error) {
	var c cloud.Credential
	var from, until *time.Time
	if err := row.Scan(&c.ID, &c.TenantID, &c.MemberID, &c.Key, &c.Kind, &c.Label, &from, &until, &c.Disabled, &c.Version, &c.CreatedAt); err != nil {
		return nil, err
	}
	c.ValidFrom, c.ValidUntil = dateOf(from), dateOf(until)
	return &c, nil
}

func insertCredential(ctx context.Context, tx *Tx, c *cloud.Credential) error {
	if err := c.Validate(); err != nil {
		return err
	}
	c.TenantID, c.Version, c.CreatedAt = tx.tenant(), 1, tx.now
	err := tx.QueryRow(ctx, `INSERT INTO credentials (tenant_id, member_id, key, kind, label, valid_from, valid_until, disabled, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		c.TenantID, c.MemberID, c.Key, c.Kind, c.Label, dateArg(c.ValidFrom), dateArg(c.ValidUntil), c.Disabled, tx.now).Scan(&c.ID)
	if err != nil {
		err = mapErr(fmt.Errorf("insert credential: %w", err))
		if cloud.ErrorCode(err) == cloud.ECONFLICT {
			return &cloud.Error{Code: cloud.ECONFLICT, Field: "key", Message: fmt.Sprintf("Credential %s is already assigned.", c.Key)}
		}
		if cloud.ErrorField(err) == "member_id" {
			return cloud.NotFound("Member")
		}
		return err
	}
	return tx.audit(ctx, "credential.create", "credential", c.ID, map[string]any{"member_id": c.MemberID, "key": c.Key})
}

// CreateCredential gives a member a credential.
func (s *MemberService) CreateCredential(ctx context.Context, c *cloud.Credential) error {
	return s.db.inTx(ctx, func(tx *Tx) error { return insertCredential(ctx, tx, c) })
}

// findOfMember lists the rows of table that belong to one of the tenant's
// members, in order; ENOTFOUND if there is no such member. cols are the
// columns scan reads.
func findOfMember[T any](ctx context.Context, db *DB, memberID int64, table, cols, order string, scan func(pgx.Row) (T, error)) ([]T, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := findMember(ctx, db.Pool, op.TenantID, memberID, false); err != nil {
		return nil, err
	}
	rows, err := db.Pool.Query(ctx, `SELECT `+cols+` FROM `+table+` WHERE tenant_id = $1 AND member_id = $2 ORDER BY `+order, op.TenantID, memberID)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", table, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
}

// FindCredentials lists a member's credentials.
func (s *MemberService) FindCredentials(ctx context.Context, memberID int64) ([]*cloud.Credential, error) {
	return findOfMember(ctx, s.db, memberID, "credentials", credentialCols, "id", scanCredential)
}

// UpdateCredential changes a credential's label, validity or disabled flag.
func (s *MemberService) UpdateCredential(ctx context.Context, id int64, version int, upd cloud.CredentialUpdate) (*cloud.Credential, error) {
	var c *cloud.Credential
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if c, err = lockVersioned(ctx, tx, "credentials", credentialCols, id, "Credential", version, scanCredential); err != nil {
			return err
		}
		if upd.Label != nil {
			c.Label = *upd.Label
		}
		upd.ValidFrom.ApplyValue(&c.ValidFrom)
		upd.ValidUntil.ApplyValue(&c.ValidUntil)
		if upd.Disabled != nil {
			c.Disabled = *upd.Disabled
		}
		if err := c.Validate(); err != nil {
			return err
		}
		c.Version++
		if _, err := tx.Exec(ctx, `UPDATE credentials SET label = $3, valid_from = $4, valid_until = $5, disabled = $6, version = $7 WHERE tenant_id = $1 AND id = $2`,
			tx.tenant(), id, c.Label, dateArg(c.ValidFrom), dateArg(c.ValidUntil), c.Disabled, c.Version); err != nil {
			return mapErr(fmt.Errorf("update credential: %w", err))
		}
		return tx.audit(ctx, "credential.update", "credential", id, upd)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

const membershipCols = `id, tenant_id, member_id, name, starts_on, ends_on, site_ids, device_types, cancelled, version, created_at`

func scanMembership(row pgx.Row) (*cloud.Membership, error) {
	var ms cloud.Membership
	var from, to time.Time
	var dts []string
	if err := row.Scan(&ms.ID, &ms.TenantID, &ms.MemberID, &ms.Name, &from, &to, &ms.SiteIDs, &dts, &ms.Cancelled, &ms.Version, &ms.CreatedAt); err != nil {
		return nil, err
	}
	ms.StartsOn, ms.EndsOn = cloud.DateOf(from), cloud.DateOf(to)
	ms.DeviceTypes = deviceTypes(dts)
	return &ms, nil
}

// checkSites checks that every site ID is one of the tenant's.
func checkSites(ctx context.Context, tx *Tx, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM sites WHERE tenant_id = $1 AND id = ANY($2)`, tx.tenant(), ids).Scan(&n); err != nil {
		return fmt.Errorf("check sites: %w", err)
	}
	distinct := map[int64]bool{}
	for _, id := range ids {
		distinct[id] = true
	}
	if n != len(distinct) {
		return cloud.Invalid("site_ids", "Site not found.")
	}
	return nil
}

// CreateMembership gives a member a membership.
func (s *MemberService) CreateMembership(ctx context.Context, ms *cloud.Membership) error {
	if err := ms.Validate(); err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx *Tx) error {
		if err := checkSites(ctx, tx, ms.SiteIDs); err != nil {
			return err
		}
		ms.TenantID, ms.Version, ms.CreatedAt = tx.tenant(), 1, tx.now
		err := tx.QueryRow(ctx, `INSERT INTO memberships (tenant_id, member_id, name, starts_on, ends_on, site_ids, device_types, cancelled, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
			ms.TenantID, ms.MemberID, ms.Name, ms.StartsOn.Time(), ms.EndsOn.Time(), ms.SiteIDs, deviceStrings(ms.DeviceTypes), ms.Cancelled, tx.now).Scan(&ms.ID)
		if err != nil {
			err = mapErr(fmt.Errorf("insert membership: %w", err))
			if cloud.ErrorField(err) == "member_id" {
				return cloud.NotFound("Member")
			}
			return err
		}
		return tx.audit(ctx, "membership.create", "membership", ms.ID, ms)
	})
}

// FindMemberships lists a member's memberships.
func (s *MemberService) FindMemberships(ctx context.Context, memberID int64) ([]*cloud.Membership, error) {
	return findOfMember(ctx, s.db, memberID, "memberships", membershipCols, "starts_on, id", scanMembership)
}

// UpdateMembership changes a membership.
func (s *MemberService) UpdateMembership(ctx context.Context, id int64, version int, upd cloud.MembershipUpdate) (*cloud.Membership, error) {
	var ms *cloud.Membership
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if ms, err = lockVersioned(ctx, tx, "memberships", membershipCols, id, "Membership", version, scanMembership); err != nil {
			return err
		}
		upd.Apply(ms)
		if err := ms.Validate(); err != nil {
			return err
		}
		if err := checkSites(ctx, tx, ms.SiteIDs); err != nil {
			return err
		}
		ms.Version++
		if _, err := tx.Exec(ctx, `UPDATE memberships SET name = $3, starts_on = $4, ends_on = $5, site_ids = $6, device_types = $7, cancelled = $8, version = $9
			WHERE tenant_id = $1 AND id = $2`, tx.tenant(), id, ms.Name, ms.StartsOn.Time(), ms.EndsOn.Time(), ms.SiteIDs, deviceStrings(ms.DeviceTypes), ms.Cancelled, ms.Version); err != nil {
			return mapErr(fmt.Errorf("update membership: %w", err))
		}
		return tx.audit(ctx, "membership.update", "membership", id, upd)
	})
	if err != nil {
		return nil, err
	}
	return ms, nil
}
