package main

import (
	"fmt"
	"log/slog"

	"varco.dev/cloud/mqtt"
	"varco.dev/cloud/postgres"
)

var _ mqtt.SyncStore = (*postgres.SyncService)(nil)

// syncPublisher builds the state-down publisher on db, signing with the
// tenants' keys (postgres.Signer), and registers its handlers (catch-ups,
// births) on client. serve calls it before client.Run, then runs the
// publisher's Run(ctx) in a goroutine that it waits for on shutdown. creds,
// when not nil, ties each edge to its site: the broker's credential store.
func syncPublisher(db *postgres.DB, client *mqtt.Client, creds mqtt.Credentials, logger *slog.Logger) (*mqtt.Publisher, error) {
	p, err := mqtt.NewPublisher(mqtt.PublisherConfig{
		Store:       postgres.NewSyncService(db),
		Sealer:      postgres.NewSigner(db),
		Credentials: creds,
		Logger:      logger,
	})
	if err != nil {
		return nil, fmt.Errorf("sync publisher: %w", err)
	}
	p.Register(client)
	return p, nil
}
