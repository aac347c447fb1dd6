package postgres_test

import (
	"context"
	"testing"

	"varco.dev/cloud"
	"varco.dev/cloud/internal/pgtest"
	"varco.dev/cloud/postgres"
)

// TestCRMConfigCache checks that the cached CRM configuration serves the
// create+advance path without reloading, and that every change, in this
// process, in another one or in plain SQL, is seen by the next call.
func TestCRMConfigCache(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := b.member(t, "Anna", nil)
	tour, done := b.typeID(t, "Tour"), b.outcomeID(t, "Done")
	create := func(s *postgres.ActionService, typeID int64) (*cloud.Action, error) {
		a := &cloud.Action{MemberID: m.ID, TypeID: typeID}
		return a, s.CreateAction(b.admin, a)
	}
	advance := func(a *cloud.Action) *cloud.AdvanceResult {
		t.Helper()
		res, err := b.actions.AdvanceAction(b.admin, a.ID, cloud.AdvanceRequest{Mode: cloud.AdvanceClose, OutcomeID: done, Version: a.Version})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, err := create(b.actions, tour)
	if err != nil {
		t.Fatal(err)
	}
	loads := b.db.CRMConfigLoads()
	advance(a)
	for range 3 {
		a, err := create(b.actions, tour)
		if err != nil {
			t.Fatal(err)
		}
		advance(a)
	}
	if got := b.db.CRMConfigLoads(); got != loads {
		t.Errorf("config read %d more times for unchanged configuration", got-loads)
	}

	// A new type is usable at once; making it obsolete refuses it at once.
	spa := &cloud.ActionType{Name: "Spa check", Active: true, AccessAction: cloud.AccessMessageBlock, DisplayMessage: "See the spa desk",
		DeviceTypes: []cloud.DeviceType{cloud.DeviceSpa}}
	if err := b.crm.CreateActionType(b.admin, spa); err != nil {
		t.Fatal(err)
	}
	if _, err := create(b.actions, spa.ID); err != nil {
		t.Fatalf("action of a type created just now: %v", err)
	}
	if _, err := b.crm.UpdateActionType(b.admin, spa.ID, spa.Version, cloud.ActionTypeUpdate{Active: new(false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := create(b.actions, spa.ID); cloud.ErrorField(err) != "type_id" {
		t.Errorf("action of a type made obsolete just now: %v", err)
	}
	// A relation put just now drives the next advance.
	if err := b.crm.PutRelation(b.admin, &cloud.Relation{ActionTypeID: tour, OutcomeID: done, Allowed: true, Points: 9}); err != nil {
		t.Fatal(err)
	}
	a, _ = create(b.actions, tour)
	if res := advance(a); res.Points != 9 {
		t.Errorf("points = %d, want the new relation's 9", res.Points)
	}
	if got := b.db.CRMConfigLoads(); got != loads+3 {
		t.Errorf("config loads = %d, want %d: one per change", got, loads+3)
	}

	// Another process (its own pool and cache on the same database) sees
	// this one's changes, and changes made in plain SQL, at once.
	other := postgres.NewDB(b.db.URL)
	other.Logger = pgtest.Logger(t)
	if err := other.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	actions2 := postgres.NewActionService(other)
	if _, err := create(actions2, tour); err != nil {
		t.Fatal(err)
	}
	rc := b.cfg.ActionType(tour)
	if _, err := b.crm.UpdateActionType(b.admin, tour, rc.Version, cloud.ActionTypeUpdate{Active: new(false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := create(actions2, tour); cloud.ErrorField(err) != "type_id" {
		t.Errorf("other process, type made obsolete here: %v", err)
	}
	if _, err := b.db.Pool.Exec(context.Background(), `UPDATE action_types SET active = true WHERE id = $1`, tour); err != nil {
		t.Fatal(err)
	}
	if _, err := create(actions2, tour); err != nil {
		t.Errorf("other process, type reactivated in SQL: %v", err)
	}
	// What-if reads through the same cache.
	wi, err := actions2.WhatIf(b.admin, cloud.WhatIfRequest{TypeID: spa.ID})
	if err != nil || wi.AccessAction != cloud.AccessMessageBlock {
		t.Errorf("what-if on the new type = %+v, %v", wi, err)
	}
}
