package sync

import (
	"crypto/ed25519"
	"fmt"
)

// Envelope wraps every message on every topic. It carries what a receiver
// needs before it decodes the payload: the sender's protocol version, the
// message kind, the addressing (checked against the topic, see Topic.Check),
// a sequence number and time, and room for a signature.
//
// The payload is a CBOR byte string holding the encoded array [kind, body],
// so a signature covers the payload's exact bytes, whatever fields a newer
// sender put in it. The envelope's own fields are fixed for the v1 topics:
// new information goes into payloads, where it is signed and skipped by old
// receivers alike.
type Envelope struct {
	// Version is the sender's ProtocolVersion, at least 1.
	Version int `cbor:"1,keyasint"`
	// Kind is the payload's message kind.
	Kind Kind `cbor:"2,keyasint"`
	// Tenant, Site and Edge address the message as its Header does.
	Tenant string `cbor:"3,keyasint"`
	Site   string `cbor:"4,keyasint,omitempty"`
	Edge   string `cbor:"5,keyasint,omitempty"`
	// Seq and Time are the Header's.
	Seq  uint64    `cbor:"6,keyasint,omitempty"`
	Time Timestamp `cbor:"7,keyasint"`
	// Payload is the encoded [kind, body] array.
	Payload []byte `cbor:"8,keyasint"`
	// KeyID names the key that made Sig; both are empty on an unsigned
	// envelope. v1 signs with Ed25519 (64-byte signatures) over SignedBytes.
	KeyID string `cbor:"9,keyasint,omitempty"`
	Sig   []byte `cbor:"10,keyasint,omitempty"`
}

// signContext prefixes the bytes a signature covers, so that a varco sync
// signature can never be replayed as a signature over anything else.
const signContext = "varco sync v1 envelope\x00"

// Seal validates msg and returns an unsigned envelope that holds it.
func Seal(msg Message) (*Envelope, error) {
	if err := msg.Validate(); err != nil {
		return nil, err
	}
	body, err := encodePayload(msg)
	if err != nil {
		return nil, err
	}
	h := msg.header()
	return &Envelope{
		Version: ProtocolVersion,
		Kind:    msg.Kind(),
		Tenant:  h.Tenant,
		Site:    h.Site,
		Edge:    h.Edge,
		Seq:     h.Seq,
		Time:    h.Time,
		Payload: body,
	}, nil
}

// Marshal encodes the envelope. It returns ErrTooLarge past MaxMessageSize.
func (e *Envelope) Marshal() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	b, err := encMode.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("sync: encode envelope: %w", err)
	}
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %s of %d bytes, max %d", ErrTooLarge, e.Kind, len(b), MaxMessageSize)
	}
	return b, nil
}

// UnmarshalEnvelope decodes and validates an envelope without decoding its
// payload; Open does that.
func UnmarshalEnvelope(b []byte) (*Envelope, error) {
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes, max %d", ErrTooLarge, len(b), MaxMessageSize)
	}
	e := new(Envelope)
	if err := decMode.Unmarshal(b, e); err != nil {
		return nil, fmt.Errorf("%w envelope: %w", ErrMalformed, err)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// Validate checks the envelope's own fields: a known kind, ids in the id
// charset, a payload, and a signature of the right size with its key id.
func (e *Envelope) Validate() error {
	return invalid("envelope", e.validate())
}

func (e *Envelope) validate() error {
	switch {
	case e.Version < 1:
		return fmt.Errorf("version %d, want at least 1", e.Version)
	case !e.Kind.Valid():
		return fmt.Errorf("unknown kind %d", e.Kind)
	case e.Time < 0:
		return fmt.Errorf("time %d before 1970", e.Time)
	case len(e.Payload) == 0:
		return fmt.Errorf("no payload")
	case len(e.Sig) != 0 && len(e.Sig) != ed25519.SignatureSize:
		return fmt.Errorf("signature of %d bytes, want %d", len(e.Sig), ed25519.SignatureSize)
	case len(e.Sig) != 0 && e.KeyID == "":
		return fmt.Errorf("signature without key id")
	}
	if err := ValidateID(e.Tenant); err != nil {
		return fmt.Errorf("tenant: %w", err)
	}
	if err := optionalID("site", e.Site); err != nil {
		return err
	}
	if err := optionalID("edge", e.Edge); err != nil {
		return err
	}
	return optionalID("key id", e.KeyID)
}

// Open decodes the payload as a message of the envelope's kind, copies the
// envelope's addressing, Seq and Time into its Header, and validates it.
func (e *Envelope) Open() (Message, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	msg, err := decodePayload(e.Kind, e.Payload)
	if err != nil {
		return nil, err
	}
	*msg.header() = Header{Tenant: e.Tenant, Site: e.Site, Edge: e.Edge, Seq: e.Seq, Time: e.Time}
	if err := msg.Validate(); err != nil {
		return nil, err
	}
	return msg, nil
}

// SignedBytes returns the exact bytes that Sig signs: a fixed context string,
// then the envelope encoded deterministically with Sig left out (KeyID stays
// in). The payload is included as the bytes it is, so re-encoding an envelope
// that was received in another (valid, non-deterministic) encoding gives the
// same signed bytes as the sender's.
func (e *Envelope) SignedBytes() ([]byte, error) {
	c := *e
	c.Sig = nil
	b, err := encMode.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("sync: encode envelope: %w", err)
	}
	return append([]byte(signContext), b...), nil
}

// Sign sets KeyID and signs the envelope with an Ed25519 private key. Whoever
// holds the keys decides what a key id names; Verify takes the public key that
// KeyID stands for.
func (e *Envelope) Sign(keyID string, key ed25519.PrivateKey) error {
	if err := ValidateID(keyID); err != nil {
		return fmt.Errorf("sync: sign: key id: %w", err)
	}
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("sync: sign: private key of %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	e.KeyID, e.Sig = keyID, nil
	msg, err := e.SignedBytes()
	if err != nil {
		return err
	}
	e.Sig = ed25519.Sign(key, msg)
	return nil
}

// Verify checks Sig against an Ed25519 public key. It returns an error
// wrapping ErrSignature for an unsigned envelope, a bad key size or a
// signature that does not match.
func (e *Envelope) Verify(key ed25519.PublicKey) error {
	if len(e.Sig) == 0 {
		return fmt.Errorf("%w: envelope is not signed", ErrSignature)
	}
	if len(key) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key of %d bytes, want %d", ErrSignature, len(key), ed25519.PublicKeySize)
	}
	msg, err := e.SignedBytes()
	if err != nil {
		return err
	}
	if !ed25519.Verify(key, msg, e.Sig) {
		return fmt.Errorf("%w: key %q", ErrSignature, e.KeyID)
	}
	return nil
}
