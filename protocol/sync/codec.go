package sync

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Limits of the wire format. They bound what a decoder allocates for hostile
// input and are part of the protocol: a message of any future version keeps
// within them, unknown fields included, or older receivers reject it.
const (
	// MaxMessageSize is the largest encoded envelope, 1 MiB: a snapshot chunk
	// of MaxRecords realistic records fits with room to spare, and a broker's
	// default packet limit (Mosquitto, EMQX) is larger. The cloud splits
	// anything bigger into more deltas or snapshot chunks.
	MaxMessageSize = 1 << 20
	// MaxArrayLen is the largest number of elements of any CBOR array.
	MaxArrayLen = 4096
	// MaxMapLen is the largest number of pairs of any CBOR map.
	MaxMapLen = 1024
	// MaxDepth is the deepest nesting of arrays and maps; v1 uses 7.
	MaxDepth = 16
)

// Errors returned by this package, wrapped with context: test for them with
// errors.Is.
var (
	// ErrTooLarge: the message is longer than MaxMessageSize.
	ErrTooLarge = errors.New("sync: message too large")
	// ErrMalformed: the bytes are not a message of this protocol: not CBOR,
	// truncated, trailing bytes, duplicate map keys, a wrong type, a decoder
	// limit exceeded, or a payload of another kind than its envelope.
	ErrMalformed = errors.New("sync: malformed")
	// ErrInvalid: the message decodes but breaks a rule of a Validate method
	// (an unknown kind or enum value, an id outside the charset, a delta that
	// goes backwards...).
	ErrInvalid = errors.New("sync: invalid")
	// ErrTopic: a topic that is not of the layout, or whose message does not
	// belong on it.
	ErrTopic = errors.New("sync: invalid topic")
	// ErrID: a tenant, site, edge, reader or key id outside the id charset.
	ErrID = errors.New("invalid id")
	// ErrSignature: an envelope that is unsigned, signed by another key, or
	// altered after signing.
	ErrSignature = errors.New("sync: bad signature")
)

// encMode encodes with RFC 8949 Core Deterministic Encoding: shortest
// integers and lengths, map keys in bytewise order, no indefinite lengths. The
// same value always gives the same bytes, which golden files, signatures and
// the fuzzer's re-marshal check rely on.
var encMode = mustEncMode()

// decMode decodes untrusted bytes. Unknown map keys are skipped, not rejected
// (ExtraReturnErrors stays ExtraDecErrorNone): that is what lets an old
// receiver read a newer sender's messages.
var decMode = mustDecMode()

func mustEncMode() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err) // constant options: a bug, caught by any test
	}
	return em
}

func mustDecMode() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF, // a repeated key is an error, not "last one wins"
		MaxNestedLevels:  MaxDepth,
		MaxArrayElements: MaxArrayLen,
		MaxMapPairs:      MaxMapLen,
		IndefLength:      cbor.IndefLengthForbidden, // deterministic senders never use them
		TagsMd:           cbor.TagsForbidden,        // the schema has no tags: no time, bignum or custom tag decoding
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}

// Marshal validates msg and encodes it in an unsigned Envelope stamped with
// ProtocolVersion. It returns an error wrapping ErrInvalid for a message that
// breaks its rules, and ErrTooLarge for one longer than MaxMessageSize.
func Marshal(msg Message) ([]byte, error) {
	env, err := Seal(msg)
	if err != nil {
		return nil, err
	}
	return env.Marshal()
}

// Unmarshal decodes an envelope and its payload, checks that the payload is
// of the envelope's kind, copies the envelope's addressing into the message's
// Header and validates the message. It never panics; its errors wrap
// ErrTooLarge, ErrMalformed or ErrInvalid. The signature, if any, is not
// checked: use UnmarshalEnvelope, Envelope.Verify and Envelope.Open for that.
func Unmarshal(b []byte) (Message, error) {
	env, err := UnmarshalEnvelope(b)
	if err != nil {
		return nil, err
	}
	return env.Open()
}

// payload is what an envelope's Payload holds: the array [kind, body]. The
// kind repeats the envelope's so that a payload read alone (from a log, a
// change-log table, a test file) names its own type, and a payload pasted into
// an envelope of another kind is rejected instead of being misread: payloads
// of different kinds reuse the same small integer keys.
type payload[T any] struct {
	_    struct{} `cbor:",toarray"`
	Kind Kind
	Body T
}

func encodePayload(msg Message) ([]byte, error) {
	b, err := encMode.Marshal(payload[Message]{Kind: msg.Kind(), Body: msg})
	if err != nil {
		return nil, fmt.Errorf("sync: encode %s: %w", msg.Kind(), err)
	}
	return b, nil
}

// decodePayload decodes b as a payload of kind k into a new message.
func decodePayload(k Kind, b []byte) (Message, error) {
	switch k {
	case KindDelta:
		return decodeAs[Delta](k, b)
	case KindSnapshot:
		return decodeAs[Snapshot](k, b)
	case KindCatchUp:
		return decodeAs[CatchUp](k, b)
	case KindBirth:
		return decodeAs[Birth](k, b)
	case KindStatus:
		return decodeAs[Status](k, b)
	case KindEvents:
		return decodeAs[Events](k, b)
	case KindAck:
		return decodeAs[Ack](k, b)
	case KindCommand:
		return decodeAs[Command](k, b)
	}
	return nil, fmt.Errorf("%w envelope: unknown kind %d", ErrMalformed, k)
}

func decodeAs[T any, PT interface {
	*T
	Message
}](k Kind, b []byte) (Message, error) {
	var p payload[T]
	if err := decMode.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w %s payload: %w", ErrMalformed, k, err)
	}
	if p.Kind != k {
		return nil, fmt.Errorf("%w %s payload: it holds a %s", ErrMalformed, k, p.Kind)
	}
	return PT(&p.Body), nil
}
