package mqtt

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	gosync "sync"

	vsync "varco.dev/protocol/sync"
)

// MemSealer is a Sealer that holds one Ed25519 key per tenant in memory,
// generated on first use with key id "<tenant>-1". Its keys die with the
// process, so edges cannot be configured with them for good: it is for
// tests, and for `serve` until the tenants' keys live in the database. It is
// safe for concurrent use.
type MemSealer struct {
	mu   gosync.Mutex
	keys map[string]memKey
}

type memKey struct {
	id   string
	priv ed25519.PrivateKey
}

// NewMemSealer returns a MemSealer without keys.
func NewMemSealer() *MemSealer { return &MemSealer{keys: map[string]memKey{}} }

// Seal implements Sealer.
func (s *MemSealer) Seal(_ context.Context, msg vsync.Message) ([]byte, error) {
	env, err := vsync.Seal(msg)
	if err != nil {
		return nil, err
	}
	k, err := s.key(env.Tenant)
	if err != nil {
		return nil, err
	}
	if err := env.Sign(k.id, k.priv); err != nil {
		return nil, err
	}
	return env.Marshal()
}

// PublicKey returns the key id and the public key of tenant's key,
// generating the key if needed.
func (s *MemSealer) PublicKey(tenant string) (string, ed25519.PublicKey, error) {
	k, err := s.key(tenant)
	if err != nil {
		return "", nil, err
	}
	return k.id, k.priv.Public().(ed25519.PublicKey), nil
}

func (s *MemSealer) key(tenant string) (memKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[tenant]; ok {
		return k, nil
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return memKey{}, fmt.Errorf("mqtt: generate key of tenant %s: %w", tenant, err)
	}
	k := memKey{id: tenant + "-1", priv: priv}
	s.keys[tenant] = k
	return k, nil
}
