package cloud

import (
	"context"
	"slices"
	"strings"
	"time"
)

// ActionKind tells planned actions from history notes.
type ActionKind string

// Action kinds.
const (
	ActionPlanned ActionKind = "planned" // something to do, open until a closing outcome
	ActionNote    ActionKind = "note"    // a record of something that happened, closed at creation
)

// Action is a CRM action on a member. Actions are never deleted: cancelling
// is an outcome.
type Action struct {
	ID          int64      `json:"id"`
	TenantID    int64      `json:"-"`
	MemberID    int64      `json:"member_id"`
	TypeID      int64      `json:"type_id"`
	OutcomeID   int64      `json:"outcome_id"`
	Kind        ActionKind `json:"kind"`
	Description string     `json:"description"`
	Tags        []string   `json:"tags"`
	PlannedAt   *time.Time `json:"planned_at"`
	CompleteBy  Date       `json:"complete_by"`
	Purpose     Purpose    `json:"purpose,omitempty"`
	Private     bool       `json:"private"`
	OperatorID  *int64     `json:"operator_id"` // responsible operator
	CreatedBy   *int64     `json:"created_by"`
	ParentID    *int64     `json:"parent_id"` // the action this one follows
	Open        bool       `json:"open"`
	ClosedAt    *time.Time `json:"closed_at"`
	ClosedBy    *int64     `json:"closed_by"`
	Version     int        `json:"version"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// Prepare fills an action's defaults from the configuration, the member and
// the actor, and validates it. It is used for every creation path (single,
// bulk, copy, next action).
func (a *Action) Prepare(cfg *CRMConfig, m *Member, actor *Operator, now time.Time) error {
	if a.Kind == "" {
		a.Kind = ActionPlanned
	}
	if a.Kind != ActionPlanned && a.Kind != ActionNote {
		return Invalid("kind", "Kind must be planned or note.")
	}
	if a.TypeID == 0 {
		if t := cfg.DefaultActionType(); t != nil {
			a.TypeID = t.ID
		}
	}
	t := cfg.ActionType(a.TypeID)
	if t == nil {
		return Invalid("type_id", "Action type not found.")
	}
	if !t.Active {
		return Invalid("type_id", "Action type %q is obsolete.", t.Name)
	}
	if a.OutcomeID == 0 {
		if a.Kind == ActionNote {
			return Invalid("outcome_id", "A history note needs its (closing) outcome.")
		}
		if o := cfg.DefaultOutcome(); o != nil {
			a.OutcomeID = o.ID
		}
	}
	o := cfg.Outcome(a.OutcomeID)
	if o == nil {
		return Invalid("outcome_id", "Outcome not found.")
	}
	if a.Kind == ActionNote && o.Group.Open() {
		return Invalid("outcome_id", "A history note needs a closing outcome.")
	}
	if r := cfg.Relation(a.TypeID, a.OutcomeID); r != nil && !r.Allowed {
		return Invalid("outcome_id", "Outcome %q is not allowed for %q.", o.Name, t.Name)
	}
	a.MemberID = m.ID
	if a.OperatorID == nil {
		a.OperatorID = m.OperatorID
	}
	a.CreatedBy = &actor.ID
	a.Description = strings.TrimSpace(a.Description)
	if len(a.Description) > 4000 {
		return Invalid("description", "Description is at most 4000 characters.")
	}
	if a.Tags == nil {
		a.Tags = []string{}
	}
	for _, tag := range a.Tags {
		if !tagRE.MatchString(tag) {
			return Invalid("tags", "Tag %q is not valid.", tag)
		}
	}
	if a.Purpose != "" && !a.Purpose.Valid() {
		return Invalid("purpose", "Unknown GDPR purpose %q.", a.Purpose)
	}
	a.Open = o.Group.Open()
	if !a.Open {
		a.ClosedAt = &now
		a.ClosedBy = &actor.ID
	}
	return nil
}

// VisibleTo reports whether op may see the action: private actions are seen
// by their responsible operator, their creator, CRM managers and admins.
func (a *Action) VisibleTo(op *Operator) bool {
	if !a.Private || op.Role.SeesPrivate() {
		return true
	}
	return (a.OperatorID != nil && *a.OperatorID == op.ID) || (a.CreatedBy != nil && *a.CreatedBy == op.ID)
}

// ActionUpdate holds the fields of an action that can change without
// advancing it.
type ActionUpdate struct {
	Description *string             `json:"description"`
	Tags        *[]string           `json:"tags"`
	PlannedAt   Optional[time.Time] `json:"planned_at,omitzero"`
	CompleteBy  Optional[Date]      `json:"complete_by,omitzero"`
	Purpose     *Purpose            `json:"purpose"`
	Private     *bool               `json:"private"`
	OperatorID  Optional[int64]     `json:"operator_id,omitzero"`
}

// Apply copies the set fields of u onto a.
func (u *ActionUpdate) Apply(a *Action) {
	if u.Description != nil {
		a.Description = *u.Description
	}
	if u.Tags != nil {
		a.Tags = slices.Clone(*u.Tags)
	}
	u.PlannedAt.Apply(&a.PlannedAt)
	u.CompleteBy.ApplyValue(&a.CompleteBy)
	if u.Purpose != nil {
		a.Purpose = *u.Purpose
	}
	if u.Private != nil {
		a.Private = *u.Private
	}
	u.OperatorID.Apply(&a.OperatorID)
}

// AdvanceMode is how an action is advanced.
type AdvanceMode string

// Advance modes.
const (
	AdvanceClose         AdvanceMode = "close"           // close with an outcome
	AdvanceCloseWithNote AdvanceMode = "close_with_note" // close and record a history note
	AdvanceProceed       AdvanceMode = "proceed"         // close and plan the next action
)

// NextAction is the next action asked for when proceeding. Zero fields are
// taken from the relation, then from defaults.
type NextAction struct {
	TypeID      int64      `json:"type_id"`
	OperatorID  *int64     `json:"operator_id"`
	PlannedAt   *time.Time `json:"planned_at"`
	Description string     `json:"description"`
}

// AdvanceRequest asks to advance an action.
type AdvanceRequest struct {
	Mode      AdvanceMode `json:"mode"`
	OutcomeID int64       `json:"outcome_id"`
	Note      string      `json:"note"`
	Next      *NextAction `json:"next"`
	Version   int         `json:"version"`
}

// AdvancePlan is everything advancing an action does, computed by
// PlanAdvance and applied by the store in one transaction.
type AdvancePlan struct {
	Action      *Action // the advanced action, with its new outcome
	Note        *Action // history note to create, or nil
	Next        *Action // next action to create, or nil
	NewStatusID *int64  // commercial status to set on the member, or nil
	Points      int     // points to award
	PointsTo    *int64  // operator who earns them
}

// PlanAdvance applies the advance rules: the outcome must close the action
// and be allowed for its type; the relation (type, outcome) sets the member's
// commercial status, awards points to the responsible operator (the actor
// when there is none) and plans the next action unless it is conclusive.
// Proceeding needs a next action type, from the request or the relation.
func PlanAdvance(cfg *CRMConfig, a *Action, m *Member, actor *Operator, req AdvanceRequest, now time.Time) (*AdvancePlan, error) {
	if !a.Open {
		return nil, Errorf(ECONFLICT, "The action is already closed.")
	}
	switch req.Mode {
	case AdvanceClose, AdvanceCloseWithNote, AdvanceProceed:
	default:
		return nil, Invalid("mode", "Mode must be close, close_with_note or proceed.")
	}
	o := cfg.Outcome(req.OutcomeID)
	if o == nil {
		return nil, Invalid("outcome_id", "Outcome not found.")
	}
	if !o.Active {
		return nil, Invalid("outcome_id", "Outcome %q is obsolete.", o.Name)
	}
	if o.Group.Open() {
		return nil, Invalid("outcome_id", "Outcome %q does not close the action.", o.Name)
	}
	rel := cfg.Relation(a.TypeID, o.ID)
	if rel != nil && !rel.Allowed {
		return nil, Invalid("outcome_id", "Outcome %q is not allowed for this action type.", o.Name)
	}
	if req.Mode == AdvanceCloseWithNote && strings.TrimSpace(req.Note) == "" {
		return nil, Invalid("note", "A note is required.")
	}
	if req.Mode != AdvanceProceed && req.Next != nil {
		return nil, Invalid("next", "A next action is only given when proceeding.")
	}
	if req.Mode == AdvanceProceed && rel != nil && rel.Conclusive {
		return nil, Invalid("mode", "Outcome %q concludes the chain: close instead.", o.Name)
	}

	closed := *a
	closed.OutcomeID = o.ID
	closed.Open = false
	closed.ClosedAt = &now
	closed.ClosedBy = &actor.ID
	p := &AdvancePlan{Action: &closed}

	if rel != nil {
		p.NewStatusID = rel.NewStatusID
		p.Points = rel.Points
	}
	if p.Points != 0 {
		p.PointsTo = a.OperatorID
		if p.PointsTo == nil {
			p.PointsTo = &actor.ID
		}
	}
	if req.Mode == AdvanceCloseWithNote {
		p.Note = &Action{TypeID: a.TypeID, OutcomeID: o.ID, Kind: ActionNote, Description: strings.TrimSpace(req.Note),
			Purpose: a.Purpose, Private: a.Private, OperatorID: &actor.ID, ParentID: &a.ID}
		if err := p.Note.Prepare(cfg, m, actor, now); err != nil {
			return nil, err
		}
	}

	var next *Action
	if rel != nil && rel.NextTypeID != nil && !rel.Conclusive {
		next = &Action{TypeID: *rel.NextTypeID, Purpose: a.Purpose, Private: a.Private, Description: a.Description}
		at := now.Add(time.Duration(rel.NextAfterDays)*24*time.Hour + time.Duration(rel.NextAfterHours)*time.Hour)
		next.PlannedAt = &at
		switch rel.NextRecipient {
		case RecipientMyself, "":
			next.OperatorID = &actor.ID
		case RecipientMemberOperator:
			next.OperatorID = m.OperatorID
		case RecipientActionOperator:
			next.OperatorID = a.OperatorID
		case RecipientFixed:
			next.OperatorID = rel.NextOperatorID
		}
	}
	if req.Mode == AdvanceProceed {
		if next == nil {
			next = &Action{Purpose: a.Purpose, Private: a.Private, OperatorID: &actor.ID, Description: a.Description}
		}
		if n := req.Next; n != nil {
			if n.TypeID != 0 {
				next.TypeID = n.TypeID
			}
			if n.OperatorID != nil {
				next.OperatorID = n.OperatorID
			}
			if n.PlannedAt != nil {
				next.PlannedAt = n.PlannedAt
			}
			if n.Description != "" {
				next.Description = n.Description
			}
		}
		if next.TypeID == 0 {
			return nil, Invalid("next.type_id", "No next action type: give one.")
		}
	}
	if next != nil {
		next.Kind = ActionPlanned
		next.ParentID = &a.ID
		next.Tags = slices.Clone(a.Tags)
		op := next.OperatorID
		if err := next.Prepare(cfg, m, actor, now); err != nil {
			return nil, err
		}
		next.OperatorID = op // an unassigned member keeps the next action unassigned
		p.Next = next
	}
	return p, nil
}

// AdvanceResult is what advancing returned.
type AdvanceResult struct {
	Action      *Action `json:"action"`
	Note        *Action `json:"note"`
	Next        *Action `json:"next"`
	NewStatusID *int64  `json:"new_status_id"`
	Points      int     `json:"points"`
}

// ActionFilter selects actions, newest first; Cursor is the last ID seen.
type ActionFilter struct {
	MemberID   int64
	OperatorID int64
	Open       *bool
	Cursor     int64
	Limit      int
}

// AgendaFilter selects open actions planned in [From, To] (dates in UTC).
type AgendaFilter struct {
	OperatorID int64 // 0: every operator
	From, To   Date
}

// AgendaDay is the open actions of one operator on one day.
type AgendaDay struct {
	OperatorID *int64    `json:"operator_id"`
	Day        Date      `json:"day"`
	Actions    []*Action `json:"actions"`
}

// LeaderboardEntry is an operator's points over a period.
type LeaderboardEntry struct {
	OperatorID int64  `json:"operator_id"`
	Name       string `json:"name"`
	Points     int    `json:"points"`
	Actions    int    `json:"actions"`
}

// WhatIfRequest asks what a blocking action type or a bulk creation would
// stop. Either TypeID names an existing type, possibly with a changed
// AccessAction and DeviceTypes, or AccessAction and DeviceTypes describe a
// new one. MemberIDs, when given, are the members of a bulk creation;
// otherwise the members with open actions of the type are counted.
type WhatIfRequest struct {
	TypeID       int64         `json:"type_id"`
	AccessAction *AccessAction `json:"access_action"`
	DeviceTypes  *[]DeviceType `json:"device_types"`
	MemberIDs    []int64       `json:"member_ids"`
}

// WhatIfResult says how many members would be stopped (message_block) or
// shown the message (message), and at which gates.
//
// Only members who hold an active credential (not disabled, not expired)
// are counted: a member without one cannot badge, so no gate can stop or
// greet them; they are counted in MembersWithoutCredential instead.
// Archived members and IDs that are not the tenant's are not counted at all.
type WhatIfResult struct {
	AccessAction             AccessAction  `json:"access_action"`
	MembersStopped           int           `json:"members_stopped"`
	MembersMessaged          int           `json:"members_messaged"`
	MembersWithoutCredential int           `json:"members_without_credential"`
	Gates                    []*WhatIfGate `json:"gates"`
}

// WhatIfGate is a gate whose device type the action type applies to.
// Members is how many of the counted members hold a membership valid today
// that opens this gate (its site and device type): the ones it would stop
// or greet today; the others are refused there anyway.
type WhatIfGate struct {
	ID         int64      `json:"id"`
	SiteID     int64      `json:"site_id"`
	SiteName   string     `json:"site_name"`
	Name       string     `json:"name"`
	DeviceType DeviceType `json:"device_type"`
	Members    int        `json:"members"`
}

// Override lets a blocked member through once at a gate without closing
// the blocking action. It is recorded with who and why.
type Override struct {
	ID         int64      `json:"id"`
	TenantID   int64      `json:"-"`
	MemberID   int64      `json:"member_id"`
	GateID     int64      `json:"gate_id"`
	OperatorID int64      `json:"operator_id"`
	Reason     string     `json:"reason"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	UsedAt     *time.Time `json:"used_at"`
}

// Validate checks an override request.
func (o *Override) Validate() error {
	o.Reason = strings.TrimSpace(o.Reason)
	if o.GateID <= 0 {
		return Invalid("gate_id", "Gate is required.")
	}
	if o.Reason == "" || len(o.Reason) > 500 {
		return Invalid("reason", "A reason is required, at most 500 characters.")
	}
	return nil
}

// ActionService manages CRM actions. There is no way to delete one.
type ActionService interface {
	// CreateAction returns EINVALID when the member, type, outcome or
	// operator is not the tenant's.
	CreateAction(ctx context.Context, a *Action) error
	// FindActionByID returns ENOTFOUND also for a private action the
	// operator may not see.
	FindActionByID(ctx context.Context, id int64) (*Action, error)
	FindActions(ctx context.Context, f ActionFilter) ([]*Action, error)
	UpdateAction(ctx context.Context, id int64, version int, upd ActionUpdate) (*Action, error)
	// AdvanceAction applies PlanAdvance in one transaction.
	AdvanceAction(ctx context.Context, id int64, req AdvanceRequest) (*AdvanceResult, error)
	// CopyAction creates a new open action like id, for memberID (0: the same member).
	CopyAction(ctx context.Context, id int64, memberID int64, plannedAt *time.Time) (*Action, error)
	// BulkCreateActions creates a copy of tmpl for each member, all or none.
	BulkCreateActions(ctx context.Context, tmpl *Action, memberIDs []int64) ([]*Action, error)
	Agenda(ctx context.Context, f AgendaFilter) ([]*AgendaDay, error)
	Leaderboard(ctx context.Context, from, to time.Time) ([]*LeaderboardEntry, error)
	WhatIf(ctx context.Context, req WhatIfRequest) (*WhatIfResult, error)
	CreateOverride(ctx context.Context, o *Override) error
}
