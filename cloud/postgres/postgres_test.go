package postgres_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"varco.dev/cloud"
	"varco.dev/cloud/internal/pgtest"
	"varco.dev/cloud/postgres"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the tests' "now": a Tuesday morning in Rome, in UTC.
var t0 = time.Date(2025, 3, 4, 8, 30, 0, 0, time.UTC)

type bundle struct {
	db       *postgres.DB
	clock    *pgtest.Clock
	tenants  *postgres.TenantService
	members  *postgres.MemberService
	crm      *postgres.CRMService
	actions  *postgres.ActionService
	sites    *postgres.SiteService
	ops      *postgres.OperatorService
	access   *postgres.AccessService
	admin    context.Context // admin of tenant A
	cfg      *cloud.CRMConfig
	adminOp  *cloud.Operator
	tenantID int64
}

func setup(t *testing.T) *bundle { return setupB(t) }

func setupB(t testing.TB) *bundle {
	t.Helper()
	clock := pgtest.NewClock(t0)
	db := pgtest.NewDB(t, clock)
	b := &bundle{db: db, clock: clock,
		tenants: postgres.NewTenantService(db), members: postgres.NewMemberService(db), crm: postgres.NewCRMService(db),
		actions: postgres.NewActionService(db), sites: postgres.NewSiteService(db), ops: postgres.NewOperatorService(db),
		access: postgres.NewAccessService(db)}
	ten := &cloud.Tenant{Name: "Club A", Slug: "club-a"}
	admin := &cloud.Operator{Email: "admin@a.test", Name: "Admin A"}
	if err := b.tenants.CreateTenant(context.Background(), ten, admin, "correct horse battery"); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	b.tenantID, b.adminOp = ten.ID, admin
	b.admin = cloud.NewContextWithOperator(context.Background(), admin)
	cfg, err := b.crm.Config(b.admin)
	if err != nil {
		t.Fatalf("Config: %v", err)
	}
	b.cfg = cfg
	return b
}

// operator creates an operator with role r and returns its context.
func (b *bundle) operator(t *testing.T, email string, r cloud.Role) (context.Context, *cloud.Operator) {
	t.Helper()
	op := &cloud.Operator{Email: email, Name: email, Role: r}
	if err := b.ops.CreateOperator(b.admin, op, "correct horse battery"); err != nil {
		t.Fatalf("CreateOperator: %v", err)
	}
	return cloud.NewContextWithOperator(context.Background(), op), op
}

func (b *bundle) member(t *testing.T, first string, opID *int64) *cloud.Member {
	t.Helper()
	m := &cloud.Member{Kind: cloud.KindPerson, FirstName: first, LastName: "Rossi", Language: "en", OperatorID: opID}
	if err := b.members.CreateMember(b.admin, m); err != nil {
		t.Fatalf("CreateMember: %v", err)
	}
	return m
}

func (b *bundle) typeID(t *testing.T, name string) int64 {
	t.Helper()
	for _, x := range b.cfg.ActionTypes {
		if x.Name == name {
			return x.ID
		}
	}
	t.Fatalf("no action type %q", name)
	return 0
}

func (b *bundle) outcomeID(t *testing.T, name string) int64 {
	t.Helper()
	for _, x := range b.cfg.Outcomes {
		if x.Name == name {
			return x.ID
		}
	}
	t.Fatalf("no outcome %q", name)
	return 0
}

func (b *bundle) statusID(t *testing.T, name string) int64 {
	t.Helper()
	for _, x := range b.cfg.Statuses {
		if x.Name == name {
			return x.ID
		}
	}
	t.Fatalf("no status %q", name)
	return 0
}

func TestSeededConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)
	def := cloud.DefaultCRMConfig()
	if len(b.cfg.ActionTypes) != len(def.ActionTypes) || len(b.cfg.Outcomes) != len(def.Outcomes) ||
		len(b.cfg.Statuses) != len(def.Statuses) || len(b.cfg.Relations) != len(def.Relations) {
		t.Fatalf("seeded config has %d types, %d outcomes, %d statuses, %d relations",
			len(b.cfg.ActionTypes), len(b.cfg.Outcomes), len(b.cfg.Statuses), len(b.cfg.Relations))
	}
	if d := b.cfg.DefaultOutcome(); d == nil || d.Name != "Planned" {
		t.Fatalf("default outcome = %+v, want Planned", d)
	}
	rc := b.cfg.ActionType(b.typeID(t, "Reception check"))
	if rc.AccessAction != cloud.AccessMessageBlock || rc.DisplayMessage == "" {
		t.Fatalf("Reception check = %+v", rc)
	}
}

func TestActionsAreNeverDeleted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := b.member(t, "Anna", nil)
	a := &cloud.Action{MemberID: m.ID, TypeID: b.typeID(t, "Tour")}
	if err := b.actions.CreateAction(b.admin, a); err != nil {
		t.Fatal(err)
	}
	_, err := b.db.Pool.Exec(context.Background(), `DELETE FROM crm_actions WHERE id = $1`, a.ID)
	if err == nil {
		t.Fatal("DELETE of a CRM action succeeded; the trigger should forbid it")
	}
}
