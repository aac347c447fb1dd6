package cloud

import "context"

// Communicator sends one communication to members, at most once per (DedupKey, member).
type Communicator interface {
	Communicate(ctx context.Context, req CommunicationRequest) (CommunicationResult, error)
}
type CommunicationRequest struct {
	TenantID, OperatorID int64
	TemplateID           int64
	Channel              string
	Purpose              string
	MemberIDs            []int64
	DedupKey             string
}
type CommunicationResult struct{ Sent, Skipped, Failed int }
