package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"varco.dev/cloud"
	"varco.dev/cloud/postgres"
)

// TestOutboxTriggers: every change that can alter an access record queues
// its member (or all members, or a wake-up) in the access outbox, in the
// same transaction; changes that cannot, do not.
func TestOutboxTriggers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	site := &cloud.Site{Name: "Centro", Timezone: "Europe/Rome"}
	if err := b.sites.CreateSite(b.admin, site); err != nil {
		t.Fatal(err)
	}
	m := b.member(t, "Anna", nil)
	cred := &cloud.Credential{MemberID: m.ID, Key: "card:1:1"}
	var action *cloud.Action
	str := func(s string) *string { return &s }

	// outbox returns the queued rows as "member", "all@site" or "wake",
	// and empties the outbox.
	outbox := func() []string {
		rows, err := b.db.Pool.Query(ctx, `DELETE FROM access_outbox RETURNING member_id, site_id, all_members`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var member, site *int64
			var all bool
			if err := rows.Scan(&member, &site, &all); err != nil {
				t.Fatal(err)
			}
			switch {
			case member != nil:
				got = append(got, fmt.Sprint(*member))
			case all && site != nil:
				got = append(got, fmt.Sprint("all@", *site))
			case all:
				got = append(got, "all")
			default:
				got = append(got, "wake")
			}
		}
		return got
	}
	outbox()
	me, allAtSite := fmt.Sprint(m.ID), fmt.Sprint("all@", site.ID)
	tests := []struct {
		name   string
		change func() error
		want   []string
	}{
		{"credential created", func() error { return b.members.CreateCredential(b.admin, cred) }, []string{me}},
		{"credential disabled", func() error {
			yes := true
			_, err := b.members.UpdateCredential(b.admin, cred.ID, cred.Version, cloud.CredentialUpdate{Disabled: &yes})
			return err
		}, []string{me}},
		{"membership created", func() error {
			return b.members.CreateMembership(b.admin, &cloud.Membership{MemberID: m.ID, Name: "Annual",
				StartsOn: cloud.DateOf(t0), EndsOn: cloud.DateOf(t0.AddDate(1, 0, 0))})
		}, []string{me}},
		{"instalment created", func() error {
			return b.members.CreateInstalment(b.admin, &cloud.Instalment{MemberID: m.ID, AmountCents: 100, Currency: "EUR", DueOn: cloud.DateOf(t0)})
		}, []string{me}},
		{"member's e-mail: not in the record", func() error {
			_, err := b.members.UpdateMember(b.admin, m.ID, m.Version, cloud.MemberUpdate{Email: str("anna@x.test")})
			return err
		}, nil},
		{"member's name: the birthday text", func() error {
			_, err := b.members.UpdateMember(b.admin, m.ID, m.Version+1, cloud.MemberUpdate{FirstName: str("Annie")})
			return err
		}, []string{me}},
		{"action of a type that does not act at gates", func() error {
			return b.actions.CreateAction(b.admin, &cloud.Action{MemberID: m.ID, TypeID: id(b.cfg, "Tour")})
		}, nil},
		{"blocking action", func() error {
			action = &cloud.Action{MemberID: m.ID, TypeID: id(b.cfg, "Reception check")}
			return b.actions.CreateAction(b.admin, action)
		}, []string{me}},
		{"its type's display message", func() error {
			ty := b.cfg.ActionType(id(b.cfg, "Reception check"))
			_, err := b.crm.UpdateActionType(b.admin, ty.ID, ty.Version, cloud.ActionTypeUpdate{DisplayMessage: str("Reception, please")})
			return err
		}, []string{me}},
		{"tenant's warning days", func() error {
			_, err := b.db.Pool.Exec(ctx, `UPDATE tenants SET medical_warn_days = 30 WHERE id = $1`, b.tenantID)
			return err
		}, []string{"all"}},
		{"tenant's CRM configuration version only", func() error {
			_, err := b.db.Pool.Exec(ctx, `UPDATE tenants SET crm_config_version = crm_config_version + 1 WHERE id = $1`, b.tenantID)
			return err
		}, nil},
		{"site's time zone", func() error {
			_, err := b.sites.UpdateSite(b.admin, site.ID, site.Version, cloud.SiteUpdate{Timezone: str("Europe/London")})
			return err
		}, []string{allAtSite}},
		{"site's name", func() error {
			_, err := b.sites.UpdateSite(b.admin, site.ID, site.Version+1, cloud.SiteUpdate{Name: str("Center")})
			return err
		}, nil},
		{"offline policy", func() error {
			_, err := postgres.NewSyncConfigService(b.db).PutOfflinePolicy(b.admin, &cloud.OfflinePolicy{Limits: []cloud.OfflineLimit{{Rule: "block", Mode: "fail-open", AfterSeconds: 60}}}, 1)
			return err
		}, []string{"wake"}},
	}
	for _, tt := range tests {
		if err := tt.change(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := outbox(); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: outbox %v, want %v", tt.name, got, tt.want)
		}
	}
	// A failed change queues nothing: the row goes with its transaction.
	if err := b.members.CreateCredential(b.admin, &cloud.Credential{MemberID: m.ID, Key: "card:1:1"}); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Fatalf("duplicate credential: %v", err)
	}
	if got := outbox(); len(got) != 0 {
		t.Errorf("outbox after a failed change: %v", got)
	}
}
