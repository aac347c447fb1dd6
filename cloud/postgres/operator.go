package postgres

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/alexedwards/argon2id"
	"github.com/jackc/pgx/v5"

	"varco.dev/cloud"
)

var (
	_ cloud.AuthService     = (*AuthService)(nil)
	_ cloud.OperatorService = (*OperatorService)(nil)
)

const operatorCols = `id, tenant_id, email, name, role, active, version, created_at, updated_at`

func scanOperator(row pgx.Row) (*cloud.Operator, error) {
	var o cloud.Operator
	if err := row.Scan(&o.ID, &o.TenantID, &o.Email, &o.Name, &o.Role, &o.Active, &o.Version, &o.CreatedAt, &o.UpdatedAt); err != nil {
		return nil, err
	}
	return &o, nil
}

func insertOperator(ctx context.Context, tx *Tx, o *cloud.Operator, hash string) error {
	o.CreatedAt, o.UpdatedAt, o.Version, o.TenantID = tx.now, tx.now, 1, tx.tenant()
	err := tx.QueryRow(ctx, `INSERT INTO operators (tenant_id, email, name, role, password_hash, active, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id`,
		o.TenantID, o.Email, o.Name, o.Role, hash, o.Active, tx.now).Scan(&o.ID)
	if err != nil {
		if e := mapErr(err); cloud.ErrorCode(e) == cloud.ECONFLICT {
			return cloud.Invalid("email", "This e-mail is already used by an operator.")
		}
		return mapErr(fmt.Errorf("insert operator: %w", err))
	}
	return tx.audit(ctx, "operator.create", "operator", o.ID, map[string]any{"email": o.Email, "role": o.Role})
}

// AuthService implements cloud.AuthService with argon2id password hashes
// and random bearer tokens stored as SHA-256 hashes.
type AuthService struct{ db *DB }

// NewAuthService returns an AuthService on db.
func NewAuthService(db *DB) *AuthService { return &AuthService{db: db} }

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return "vc_" + base64.RawURLEncoding.EncodeToString(b)
}

// Login checks the password and creates a session token.
func (s *AuthService) Login(ctx context.Context, email, password string) (string, *cloud.Operator, error) {
	bad := cloud.Errorf(cloud.EUNAUTHORIZED, "Wrong e-mail or password.")
	var hash string
	row := s.db.Pool.QueryRow(ctx, `SELECT password_hash, `+operatorCols+` FROM operators WHERE lower(email) = lower($1)`, strings.TrimSpace(email))
	var o cloud.Operator
	err := row.Scan(&hash, &o.ID, &o.TenantID, &o.Email, &o.Name, &o.Role, &o.Active, &o.Version, &o.CreatedAt, &o.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		_, _ = argon2id.ComparePasswordAndHash(password, s.db.dummyHash)
		return "", nil, bad
	} else if err != nil {
		return "", nil, fmt.Errorf("find operator: %w", err)
	}
	ok, err := argon2id.ComparePasswordAndHash(password, hash)
	if err != nil {
		return "", nil, fmt.Errorf("compare password: %w", err)
	}
	if !ok || !o.Active {
		return "", nil, bad
	}
	token := newToken()
	err = s.db.inTxAs(ctx, &o, func(tx *Tx) error {
		exp := tx.now.Add(s.db.SessionTTL)
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO api_tokens (tenant_id, operator_id, name, kind, token_hash, created_at, expires_at)
			VALUES ($1, $2, 'login', 'session', $3, $4, $5) RETURNING id`, o.TenantID, o.ID, hashToken(token), tx.now, exp).Scan(&id); err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		return tx.audit(ctx, "operator.login", "operator", o.ID, nil)
	})
	if err != nil {
		return "", nil, err
	}
	return token, &o, nil
}

// Authenticate resolves a bearer token to its active operator.
func (s *AuthService) Authenticate(ctx context.Context, token string) (*cloud.Operator, error) {
	if !strings.HasPrefix(token, "vc_") || len(token) > 100 {
		return nil, cloud.Errorf(cloud.EUNAUTHORIZED, "Invalid token.")
	}
	o, err := scanOperator(s.db.Pool.QueryRow(ctx, `SELECT o.id, o.tenant_id, o.email, o.name, o.role, o.active, o.version, o.created_at, o.updated_at
		FROM api_tokens t JOIN operators o ON o.tenant_id = t.tenant_id AND o.id = t.operator_id
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2) AND o.active`,
		hashToken(token), s.db.now()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cloud.Errorf(cloud.EUNAUTHORIZED, "Invalid or expired token.")
	} else if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	return o, nil
}

// CreateAPIToken creates a long-lived token for the operator in ctx.
func (s *AuthService) CreateAPIToken(ctx context.Context, name string) (string, *cloud.APIToken, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", nil, cloud.Invalid("name", "A token name of at most 100 characters is required.")
	}
	token := newToken()
	var t cloud.APIToken
	err := s.db.inTx(ctx, func(tx *Tx) error {
		t = cloud.APIToken{OperatorID: tx.op.ID, Name: name, Kind: "api", CreatedAt: tx.now}
		if err := tx.QueryRow(ctx, `INSERT INTO api_tokens (tenant_id, operator_id, name, kind, token_hash, created_at)
			VALUES ($1, $2, $3, 'api', $4, $5) RETURNING id`, tx.tenant(), tx.op.ID, name, hashToken(token), tx.now).Scan(&t.ID); err != nil {
			return fmt.Errorf("insert token: %w", err)
		}
		return tx.audit(ctx, "token.create", "token", t.ID, map[string]any{"name": name})
	})
	if err != nil {
		return "", nil, err
	}
	return token, &t, nil
}

// Logout revokes token.
func (s *AuthService) Logout(ctx context.Context, token string) error {
	return s.db.inTx(ctx, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = $1 WHERE tenant_id = $2 AND operator_id = $3 AND token_hash = $4`,
			tx.now, tx.tenant(), tx.op.ID, hashToken(token))
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		return nil
	})
}

// OperatorService implements cloud.OperatorService.
type OperatorService struct{ db *DB }

// NewOperatorService returns an OperatorService on db.
func NewOperatorService(db *DB) *OperatorService { return &OperatorService{db: db} }

// CreateOperator creates an operator; admins only.
func (s *OperatorService) CreateOperator(ctx context.Context, o *cloud.Operator, password string) error {
	if _, err := cloud.RequireRole(ctx, cloud.RoleAdmin); err != nil {
		return err
	}
	o.Active = true
	if err := o.Validate(); err != nil {
		return err
	}
	if err := cloud.ValidatePassword(password); err != nil {
		return err
	}
	hash, err := argon2id.CreateHash(password, s.db.PasswordParams)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	return s.db.inTx(ctx, func(tx *Tx) error { return insertOperator(ctx, tx, o, hash) })
}

// FindOperators lists the tenant's operators.
func (s *OperatorService) FindOperators(ctx context.Context) ([]*cloud.Operator, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+operatorCols+` FROM operators WHERE tenant_id = $1 ORDER BY id`, op.TenantID)
	if err != nil {
		return nil, fmt.Errorf("find operators: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Operator, error) { return scanOperator(r) })
}

// FindOperatorByID returns one of the tenant's operators.
func (s *OperatorService) FindOperatorByID(ctx context.Context, id int64) (*cloud.Operator, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	o, err := scanOperator(s.db.Pool.QueryRow(ctx, `SELECT `+operatorCols+` FROM operators WHERE tenant_id = $1 AND id = $2`, op.TenantID, id))
	return o, notFound(err, "Operator")
}

// UpdateOperator changes an operator; admins only.
func (s *OperatorService) UpdateOperator(ctx context.Context, id int64, version int, upd cloud.OperatorUpdate) (*cloud.Operator, error) {
	if _, err := cloud.RequireRole(ctx, cloud.RoleAdmin); err != nil {
		return nil, err
	}
	var hash *string
	if upd.Password != nil {
		if err := cloud.ValidatePassword(*upd.Password); err != nil {
			return nil, err
		}
		h, err := argon2id.CreateHash(*upd.Password, s.db.PasswordParams)
		if err != nil {
			return nil, fmt.Errorf("hash password: %w", err)
		}
		hash = &h
	}
	var o *cloud.Operator
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if o, err = lockVersioned(ctx, tx, "operators", operatorCols, id, "Operator", version, scanOperator); err != nil {
			return err
		}
		if upd.Name != nil {
			o.Name = *upd.Name
		}
		if upd.Role != nil {
			o.Role = *upd.Role
		}
		if upd.Active != nil {
			o.Active = *upd.Active
		}
		if err := o.Validate(); err != nil {
			return err
		}
		if o.ID == tx.op.ID && (o.Role != cloud.RoleAdmin || !o.Active) {
			return cloud.Invalid("role", "You cannot demote or deactivate yourself.")
		}
		o.Version++
		o.UpdatedAt = tx.now
		if _, err := tx.Exec(ctx, `UPDATE operators SET name = $3, role = $4, active = $5, version = $6, updated_at = $7,
			password_hash = coalesce($8, password_hash) WHERE tenant_id = $1 AND id = $2`,
			tx.tenant(), id, o.Name, o.Role, o.Active, o.Version, tx.now, hash); err != nil {
			return mapErr(fmt.Errorf("update operator: %w", err))
		}
		if !o.Active || hash != nil {
			if _, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND operator_id = $2 AND revoked_at IS NULL`,
				tx.tenant(), id, tx.now); err != nil {
				return fmt.Errorf("revoke tokens: %w", err)
			}
		}
		return tx.audit(ctx, "operator.update", "operator", id, map[string]any{"name": o.Name, "role": o.Role, "active": o.Active, "password_changed": hash != nil})
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// AuditService implements cloud.AuditService.
type AuditService struct{ db *DB }

// NewAuditService returns an AuditService on db.
func NewAuditService(db *DB) *AuditService { return &AuditService{db: db} }

// FindAudit lists audit entries, newest first.
func (s *AuditService) FindAudit(ctx context.Context, f cloud.AuditFilter) ([]*cloud.AuditEntry, error) {
	op, err := cloud.RequireRole(ctx, cloud.RoleAdmin, cloud.RoleCRMManager)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT id, operator_id, at, action, entity, entity_id, data FROM audit_log
		WHERE tenant_id = $1 AND ($2 = '' OR entity = $2) AND ($3 = 0 OR entity_id = $3) AND ($4 = 0 OR id < $4)
		ORDER BY id DESC LIMIT $5`, pgx.QueryExecModeExec, op.TenantID, f.Entity, f.EntityID, f.Cursor, limitOf(f.Limit, 50, 500))
	if err != nil {
		return nil, fmt.Errorf("find audit: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.AuditEntry, error) {
		var e cloud.AuditEntry
		err := r.Scan(&e.ID, &e.OperatorID, &e.At, &e.Action, &e.Entity, &e.EntityID, &e.Data)
		return &e, err
	})
}
