package main

import (
	"context"
	"testing"

	"varco.dev/cloud/internal/pgtest"
	"varco.dev/cloud/mqtt"
)

// TestSyncPublisher builds the publisher as serve will and runs it until
// its context ends; the publisher's behaviour is tested in cloud/mqtt.
func TestSyncPublisher(t *testing.T) {
	db := pgtest.NewDB(t, nil)
	client, err := mqtt.NewClient(mqtt.ClientConfig{Broker: "tcp://127.0.0.1:1", ClientID: "cloud-test"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := syncPublisher(db, client, mqtt.NewMemCredentials(nil), pgtest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
}
