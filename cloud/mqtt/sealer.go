package mqtt

import (
	"context"

	vsync "varco.dev/protocol/sync"
)

// Sealer encodes a message the cloud sends, signed with its tenant's current key.
type Sealer interface {
	Seal(ctx context.Context, msg vsync.Message) ([]byte, error)
}
