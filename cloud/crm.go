package cloud

import (
	"context"
	"regexp"
	"slices"
	"strings"
)

// AccessAction is what an open CRM action of a type does at the gate.
type AccessAction string

// Access actions.
const (
	AccessNone         AccessAction = "none"          // nothing at the gate
	AccessMessage      AccessAction = "message"       // grant and show the display message
	AccessMessageBlock AccessAction = "message_block" // deny and show the display message
)

// Valid reports whether a is a known access action.
func (a AccessAction) Valid() bool {
	return a == AccessNone || a == AccessMessage || a == AccessMessageBlock
}

// ActionType is a kind of CRM action (Tour, Renewal, Reception check...).
type ActionType struct {
	ID          int64  `json:"id"`
	TenantID    int64  `json:"-"`
	Name        string `json:"name"`
	Colour      string `json:"colour"` // #RRGGBB
	Active      bool   `json:"active"` // false: obsolete, kept for history
	Default     bool   `json:"default"`
	Description string `json:"description"`
	// AccessAction, DeviceTypes and DisplayMessage make open actions of this
	// type part of the member's access state. No device types means all.
	AccessAction   AccessAction `json:"access_action"`
	DeviceTypes    []DeviceType `json:"device_types"`
	DisplayMessage string       `json:"display_message"`
	Version        int          `json:"version"`
}

var colourRE = regexp.MustCompile(`^#[0-9A-Fa-f]{6}$`)

// Validate checks an action type.
func (t *ActionType) Validate() error {
	t.Name = strings.TrimSpace(t.Name)
	if t.Name == "" || len(t.Name) > 80 {
		return Invalid("name", "Name is required, at most 80 characters.")
	}
	if t.Colour == "" {
		t.Colour = "#607D8B"
	}
	if !colourRE.MatchString(t.Colour) {
		return Invalid("colour", "Colour must be #RRGGBB.")
	}
	if t.AccessAction == "" {
		t.AccessAction = AccessNone
	}
	if !t.AccessAction.Valid() {
		return Invalid("access_action", "Access action must be none, message or message_block.")
	}
	if t.DeviceTypes == nil {
		t.DeviceTypes = []DeviceType{}
	}
	for _, d := range t.DeviceTypes {
		if !d.Valid() {
			return Invalid("device_types", "Unknown device type %q.", d)
		}
	}
	if t.AccessAction != AccessNone && strings.TrimSpace(t.DisplayMessage) == "" {
		return Invalid("display_message", "A display message is required when the access action is %s.", t.AccessAction)
	}
	if len(t.DisplayMessage) > 160 {
		return Invalid("display_message", "Display message is at most 160 characters.")
	}
	return nil
}

// AppliesTo reports whether open actions of the type act at a gate of device type d.
func (t *ActionType) AppliesTo(d DeviceType) bool {
	if t.AccessAction == AccessNone {
		return false
	}
	return len(t.DeviceTypes) == 0 || slices.Contains(t.DeviceTypes, d)
}

// ActionTypeUpdate holds the fields of an action type that can change.
type ActionTypeUpdate struct {
	Name           *string       `json:"name"`
	Colour         *string       `json:"colour"`
	Active         *bool         `json:"active"`
	Default        *bool         `json:"default"`
	Description    *string       `json:"description"`
	AccessAction   *AccessAction `json:"access_action"`
	DeviceTypes    *[]DeviceType `json:"device_types"`
	DisplayMessage *string       `json:"display_message"`
}

// Apply copies the set fields of u onto t.
func (u *ActionTypeUpdate) Apply(t *ActionType) {
	if u.Name != nil {
		t.Name = *u.Name
	}
	if u.Colour != nil {
		t.Colour = *u.Colour
	}
	if u.Active != nil {
		t.Active = *u.Active
	}
	if u.Default != nil {
		t.Default = *u.Default
	}
	if u.Description != nil {
		t.Description = *u.Description
	}
	if u.AccessAction != nil {
		t.AccessAction = *u.AccessAction
	}
	if u.DeviceTypes != nil {
		t.DeviceTypes = slices.Clone(*u.DeviceTypes)
	}
	if u.DisplayMessage != nil {
		t.DisplayMessage = *u.DisplayMessage
	}
}

// OutcomeGroup groups outcomes into open and closed ones.
type OutcomeGroup string

// Outcome groups. An action is open while its outcome is in to_start or in_progress.
const (
	GroupToStart        OutcomeGroup = "to_start"
	GroupInProgress     OutcomeGroup = "in_progress"
	GroupClosedPositive OutcomeGroup = "closed_positive"
	GroupClosedNegative OutcomeGroup = "closed_negative"
)

// Valid reports whether g is a known group.
func (g OutcomeGroup) Valid() bool {
	return g == GroupToStart || g == GroupInProgress || g == GroupClosedPositive || g == GroupClosedNegative
}

// Open reports whether actions with an outcome of this group are open.
func (g OutcomeGroup) Open() bool { return g == GroupToStart || g == GroupInProgress }

// Outcome is the state of a CRM action (Planned, Done, Signed up...).
type Outcome struct {
	ID       int64        `json:"id"`
	TenantID int64        `json:"-"`
	Name     string       `json:"name"`
	Group    OutcomeGroup `json:"group"`
	Default  bool         `json:"default"`
	Active   bool         `json:"active"`
	Version  int          `json:"version"`
}

// Validate checks an outcome.
func (o *Outcome) Validate() error {
	o.Name = strings.TrimSpace(o.Name)
	if o.Name == "" || len(o.Name) > 80 {
		return Invalid("name", "Name is required, at most 80 characters.")
	}
	if !o.Group.Valid() {
		return Invalid("group", "Group must be to_start, in_progress, closed_positive or closed_negative.")
	}
	return nil
}

// OutcomeUpdate holds the fields of an outcome that can change.
type OutcomeUpdate struct {
	Name    *string       `json:"name"`
	Group   *OutcomeGroup `json:"group"`
	Default *bool         `json:"default"`
	Active  *bool         `json:"active"`
}

// CommercialStatus is where a member stands commercially (Prospect, Member...).
type CommercialStatus struct {
	ID       int64  `json:"id"`
	TenantID int64  `json:"-"`
	Name     string `json:"name"`
	Active   bool   `json:"active"`
	Version  int    `json:"version"`
}

// Recipient says who gets the next action a relation creates.
type Recipient string

// Recipient rules.
const (
	RecipientMyself         Recipient = "myself"          // the operator who advanced the action
	RecipientMemberOperator Recipient = "member_operator" // the member's assigned operator
	RecipientActionOperator Recipient = "action_operator" // the responsible operator of the closed action
	RecipientFixed          Recipient = "fixed"           // Relation.NextOperatorID
)

// Valid reports whether r is a known rule.
func (r Recipient) Valid() bool {
	return r == RecipientMyself || r == RecipientMemberOperator || r == RecipientActionOperator || r == RecipientFixed
}

// Relation is the automation for an action of a type reaching an outcome.
// A missing relation means "allowed, nothing else happens".
type Relation struct {
	ID             int64     `json:"id"`
	TenantID       int64     `json:"-"`
	ActionTypeID   int64     `json:"action_type_id"`
	OutcomeID      int64     `json:"outcome_id"`
	Allowed        bool      `json:"allowed"`
	NewStatusID    *int64    `json:"new_status_id"`
	NextTypeID     *int64    `json:"next_type_id"`
	NextRecipient  Recipient `json:"next_recipient"`
	NextOperatorID *int64    `json:"next_operator_id"`
	NextAfterDays  int       `json:"next_after_days"`
	NextAfterHours int       `json:"next_after_hours"`
	Points         int       `json:"points"`
	Conclusive     bool      `json:"conclusive"`
}

// Validate checks a relation.
func (r *Relation) Validate() error {
	if r.ActionTypeID <= 0 {
		return Invalid("action_type_id", "Action type is required.")
	}
	if r.OutcomeID <= 0 {
		return Invalid("outcome_id", "Outcome is required.")
	}
	if r.NextRecipient == "" {
		r.NextRecipient = RecipientMyself
	}
	if !r.NextRecipient.Valid() {
		return Invalid("next_recipient", "Recipient must be myself, member_operator, action_operator or fixed.")
	}
	if r.NextRecipient == RecipientFixed && r.NextOperatorID == nil {
		return Invalid("next_operator_id", "A fixed recipient needs an operator.")
	}
	if r.NextAfterDays < 0 || r.NextAfterDays > 3650 {
		return Invalid("next_after_days", "Must be between 0 and 3650.")
	}
	if r.NextAfterHours < 0 || r.NextAfterHours > 24*365 {
		return Invalid("next_after_hours", "Must be between 0 and 8760.")
	}
	if r.Points < -1000 || r.Points > 1000 {
		return Invalid("points", "Must be between -1000 and 1000.")
	}
	if r.Conclusive && r.NextTypeID != nil {
		return Invalid("next_type_id", "A conclusive relation has no next action.")
	}
	return nil
}

// CRMConfig is a tenant's whole CRM configuration.
type CRMConfig struct {
	ActionTypes []*ActionType       `json:"action_types"`
	Outcomes    []*Outcome          `json:"outcomes"`
	Statuses    []*CommercialStatus `json:"commercial_statuses"`
	Relations   []*Relation         `json:"relations"`
}

// ActionType returns the type with id, or nil.
func (c *CRMConfig) ActionType(id int64) *ActionType {
	for _, t := range c.ActionTypes {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// Outcome returns the outcome with id, or nil.
func (c *CRMConfig) Outcome(id int64) *Outcome {
	for _, o := range c.Outcomes {
		if o.ID == id {
			return o
		}
	}
	return nil
}

// Status returns the commercial status with id, or nil.
func (c *CRMConfig) Status(id int64) *CommercialStatus {
	for _, s := range c.Statuses {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// Relation returns the relation for (typeID, outcomeID), or nil.
func (c *CRMConfig) Relation(typeID, outcomeID int64) *Relation {
	for _, r := range c.Relations {
		if r.ActionTypeID == typeID && r.OutcomeID == outcomeID {
			return r
		}
	}
	return nil
}

// DefaultOutcome returns the default outcome of group to_start (Planned), or
// the first to_start outcome.
func (c *CRMConfig) DefaultOutcome() *Outcome {
	var first *Outcome
	for _, o := range c.Outcomes {
		if o.Group == GroupToStart && o.Active {
			if o.Default {
				return o
			}
			if first == nil {
				first = o
			}
		}
	}
	return first
}

// DefaultActionType returns the default action type, or nil.
func (c *CRMConfig) DefaultActionType() *ActionType {
	for _, t := range c.ActionTypes {
		if t.Default && t.Active {
			return t
		}
	}
	return nil
}

// DefaultRelation is a relation of the default configuration, by names.
type DefaultRelation struct {
	Type, Outcome  string
	Allowed        bool
	NewStatus      string
	NextType       string
	NextRecipient  Recipient
	NextAfterDays  int
	NextAfterHours int
	Points         int
	Conclusive     bool
}

// DefaultConfig is the CRM configuration a new tenant starts with; the club
// can change all of it.
type DefaultConfig struct {
	ActionTypes []ActionType
	Outcomes    []Outcome
	Statuses    []string
	Relations   []DefaultRelation
}

// DefaultCRMConfig returns the seed configuration for a new tenant.
func DefaultCRMConfig() DefaultConfig {
	at := func(name, colour, desc string, aa AccessAction, msg string, def bool, dts ...DeviceType) ActionType {
		if dts == nil {
			dts = []DeviceType{}
		}
		return ActionType{Name: name, Colour: colour, Active: true, Default: def, Description: desc,
			AccessAction: aa, DeviceTypes: dts, DisplayMessage: msg}
	}
	oc := func(name string, g OutcomeGroup, def bool) Outcome {
		return Outcome{Name: name, Group: g, Default: def, Active: true}
	}
	return DefaultConfig{
		ActionTypes: []ActionType{
			at("Tour", "#1E88E5", "Guided tour of the club for a prospect.", AccessNone, "", true),
			at("Guest pass", "#8E24AA", "Free entry for a guest.", AccessMessage, "Welcome! Enjoy your guest pass", false, DeviceEntrance),
			at("Meeting", "#43A047", "Appointment with a sales operator.", AccessNone, "", false),
			at("Telemarketing", "#FB8C00", "Phone call to a member or prospect.", AccessNone, "", false),
			at("Early renewal", "#00ACC1", "Offer to renew before the membership ends.", AccessMessage, "Renew early: ask at reception", false, DeviceEntrance),
			at("Renewal", "#F4511E", "Membership renewal talk.", AccessMessage, "Please renew at reception", false, DeviceEntrance),
			at("Quote", "#6D4C41", "Price quote sent to a prospect.", AccessNone, "", false),
			at("Reception check", "#E53935", "The member must see reception before entering.", AccessMessageBlock, "Please see reception", false, DeviceEntrance, DeviceSpa, DevicePool),
		},
		Outcomes: []Outcome{
			oc("Planned", GroupToStart, true),
			oc("In progress", GroupInProgress, false),
			oc("Interested", GroupInProgress, false),
			oc("Done", GroupClosedPositive, false),
			oc("Signed up", GroupClosedPositive, false),
			oc("Cancelled", GroupClosedNegative, false),
			oc("Not signed up", GroupClosedNegative, false),
			oc("Not interested", GroupClosedNegative, false),
		},
		Statuses: []string{"Prospect", "Scheduled", "Member", "Non member", "Former member", "Missed"},
		Relations: []DefaultRelation{
			{Type: "Tour", Outcome: "Signed up", Allowed: true, NewStatus: "Member", Points: 10, Conclusive: true},
			{Type: "Tour", Outcome: "Not signed up", Allowed: true, NewStatus: "Non member", NextType: "Telemarketing", NextRecipient: RecipientMemberOperator, NextAfterDays: 7, Points: 2},
			{Type: "Tour", Outcome: "Interested", Allowed: true, NewStatus: "Scheduled", NextType: "Meeting", NextRecipient: RecipientMyself, NextAfterDays: 2, Points: 3},
			{Type: "Tour", Outcome: "Not interested", Allowed: true, NewStatus: "Non member", Points: 1, Conclusive: true},
			{Type: "Tour", Outcome: "Cancelled", Allowed: true, NewStatus: "Missed"},
			{Type: "Telemarketing", Outcome: "Interested", Allowed: true, NewStatus: "Scheduled", NextType: "Tour", NextRecipient: RecipientMyself, NextAfterDays: 1, Points: 2},
			{Type: "Meeting", Outcome: "Signed up", Allowed: true, NewStatus: "Member", Points: 10, Conclusive: true},
			{Type: "Quote", Outcome: "Signed up", Allowed: true, NewStatus: "Member", Points: 10, Conclusive: true},
			{Type: "Quote", Outcome: "Not signed up", Allowed: true, NextType: "Telemarketing", NextRecipient: RecipientActionOperator, NextAfterDays: 14, Points: 1},
			{Type: "Early renewal", Outcome: "Signed up", Allowed: true, NewStatus: "Member", Points: 8, Conclusive: true},
			{Type: "Renewal", Outcome: "Signed up", Allowed: true, NewStatus: "Member", Points: 5, Conclusive: true},
			{Type: "Renewal", Outcome: "Not signed up", Allowed: true, NewStatus: "Former member", Points: 1, Conclusive: true},
			{Type: "Guest pass", Outcome: "Done", Allowed: true, NewStatus: "Prospect", NextType: "Tour", NextRecipient: RecipientMemberOperator, NextAfterHours: 48},
			{Type: "Reception check", Outcome: "Done", Allowed: true, Points: 1},
			{Type: "Reception check", Outcome: "Signed up", Allowed: false},
			{Type: "Reception check", Outcome: "Interested", Allowed: false},
		},
	}
}

// CRMService reads and changes a tenant's CRM configuration. Reads are open
// to every operator; changes need the admin or crm_manager role.
type CRMService interface {
	Config(ctx context.Context) (*CRMConfig, error)
	// CreateActionType returns ECONFLICT if the name is taken.
	CreateActionType(ctx context.Context, t *ActionType) error
	UpdateActionType(ctx context.Context, id int64, version int, upd ActionTypeUpdate) (*ActionType, error)
	CreateOutcome(ctx context.Context, o *Outcome) error
	// UpdateOutcome recomputes the open flag of actions with this outcome
	// when its group changes.
	UpdateOutcome(ctx context.Context, id int64, version int, upd OutcomeUpdate) (*Outcome, error)
	CreateCommercialStatus(ctx context.Context, s *CommercialStatus) error
	// PutRelation creates or replaces the relation for (type, outcome).
	PutRelation(ctx context.Context, r *Relation) error
	// Replace moves every action from one type (or outcome) to another and
	// returns how many actions changed. kind is "action_type" or "outcome".
	Replace(ctx context.Context, kind string, from, to int64) (int, error)
}
