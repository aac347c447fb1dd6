// Package sync is the protocol between varco-cloud and the varco-edge daemons
// on the turnstile controllers: the MQTT topics they share, the messages they
// publish there and how those are encoded. It imports nothing of edge or cloud;
// both build on it.
//
// # Flows
//
// Down, the cloud keeps each site's access state (a Record per member:
// credential keys, validity, scope, open blocking CRM actions, texts to show)
// under a version number, and publishes every change as a Delta from one
// version to the next on the site's state topic. Each edge applies deltas in
// order to its cache; on a gap it sends a CatchUp and gets the missing deltas,
// or a Snapshot in chunks, on its own sync topic (see Delta for the rules).
//
// Up, an edge journals every decision and alarm with a gap-free sequence and
// sends the journal in Events batches; the cloud stores them idempotently and
// answers with an Ack of its high-water mark, and only then does the edge
// delete them. On every connect the edge publishes a Birth (who it is, its
// cache version, its readers) and a retained online Status, and leaves an
// offline Status as its last will. The cloud sends an edge Commands: open a
// gate once, resync, show a text.
//
// # Topics
//
// IDs in topics (tenant, site, edge) are 1 to 64 characters of a-z, 0-9 and
// '-' (ValidateID); ParseTopic accepts only the layout below and
// Topic.Check ties a message to the topic it arrived on. Everything an edge
// reads besides its site's state is under its own edge/{edge}/, so the broker
// ACL of edge E of tenant T is: subscribe varco/v1/T/site/{its site}/state and
// varco/v1/T/edge/E/{sync,ack,cmd}; publish varco/v1/T/edge/E/{events,birth,
// status,catchup}.
//
//	topic                                  payload          publisher  subscriber              QoS retain
//	varco/v1/{tenant}/site/{site}/state    Delta            cloud      every edge of the site  1   no
//	varco/v1/{tenant}/edge/{edge}/sync     Delta, Snapshot  cloud      that edge               1   no
//	varco/v1/{tenant}/edge/{edge}/catchup  CatchUp          edge       cloud                   1   no
//	varco/v1/{tenant}/edge/{edge}/events   Events           edge       cloud                   1   no
//	varco/v1/{tenant}/edge/{edge}/ack      Ack              cloud      that edge               1   no
//	varco/v1/{tenant}/edge/{edge}/birth    Birth            edge       cloud                   1   no
//	varco/v1/{tenant}/edge/{edge}/status   Status           edge/will  cloud, consoles         1   yes
//	varco/v1/{tenant}/edge/{edge}/cmd      Command          cloud      that edge               1   no
//
// QoS 1 everywhere: every receiver is idempotent (delta versions, event
// sequences, command ids). The cloud subscribes with TopicKind.Filter. Both
// sides connect with clean sessions: nothing depends on a broker keeping
// messages for an absent client. An edge that was away learns what it missed
// from versions, not from a broker queue: its Birth carries its cache
// version and the cloud answers with the deltas (or a snapshot) since; its
// journal holds every event until an Ack covers it and is sent again after a
// reconnect; a command that waited is dropped once expired. So a broker
// restart, a session expiry or a switch to another broker loses nothing.
//
// Every message the cloud sends (Delta, Snapshot, Ack, Command) is signed
// with its tenant's Ed25519 key (Envelope.Sign); an edge verifies it with the
// public keys of its configuration and drops anything unsigned or forged, so
// a compromised broker can neither open a gate nor change a cache.
//
// # Encoding
//
// Every message travels in an Envelope (version, kind, tenant, site, edge,
// sequence, time, payload, key id, signature); the payload is a CBOR byte
// string holding the array [kind, body]. The envelope and the bodies are CBOR
// (RFC 8949) maps with small integer keys (struct tags `cbor:"1,keyasint"`),
// written with Core Deterministic Encoding by github.com/fxamacker/cbor; the
// golden files in testdata show every kind in CBOR diagnostic notation. CBOR
// rather than protocol buffers because:
//
//   - there is no code generation step: the Go structs and their field tags
//     are the schema, and the golden files in testdata pin its bytes;
//   - it is self-describing: a receiver skips a field it does not know, value
//     and all, without a schema, so an old edge reads a newer cloud's
//     messages (and the reverse);
//   - deterministic encoding gives one byte string per value, which is what
//     a signature needs (Envelope.SignedBytes) and what golden files and
//     re-marshal checks compare;
//   - it is small: integer keys cost one byte, a 100-member delta is a few
//     kilobytes; and it is a standard (RFC 8949, deterministic encoding in
//     §4.2) with decoders in every language and a readable diagnostic
//     notation (testdata/*.txt).
//
// # Evolution
//
// ProtocolVersion is one integer with a dated history. The rules that keep
// old and new sides talking:
//
//   - a field's key is never reused for another meaning, nor its type
//     changed; a removed field's key is retired;
//   - new fields are optional, and receivers ignore keys they do not know;
//   - enum values (kinds, device types, modes, reasons) are validated, so a
//     sender does not send a value newer than the receiver's version: the
//     cloud knows each edge's from its Birth's envelope;
//   - the envelope's fields are fixed: new information goes into payloads;
//   - no CBOR tags and no indefinite lengths, and every message keeps within
//     MaxMessageSize, MaxArrayLen, MaxMapLen and MaxDepth, or old receivers
//     reject it.
//
// # Untrusted input
//
// Unmarshal is written for bytes from anywhere. It refuses input longer than
// MaxMessageSize before decoding; rejects trailing bytes, duplicate map keys,
// indefinite lengths, tags, invalid UTF-8, integers that overflow their field,
// arrays longer than MaxArrayLen, maps larger than MaxMapLen and nesting
// deeper than MaxDepth; checks the whole input is well-formed before it
// allocates anything for it, so a huge length prefix costs nothing; and then
// validates the message (Validate methods), so that nonsense such as a delta
// that goes backwards, a duplicate member or an unknown device type is an
// error with the path of the bad field. It returns errors, never panics, and
// FuzzUnmarshal checks that. What decoding allocates is bounded by the input:
// at worst about 41 bytes per input byte, 41 MiB for a hostile message of
// MaxMessageSize made of empty structs (TestDecodeMemoryBound).
//
// # Signatures
//
// Envelope has KeyID and Sig fields, and Sign and Verify with Ed25519 over
// SignedBytes. Whether and which messages must be signed, and how keys are
// distributed, is for a later version; v1 senders leave both empty.
//
// # Name
//
// The package is called sync after its directory; import it under another
// name where the standard library's sync is needed too, e.g.
//
//	import vsync "varco.dev/protocol/sync"
package sync
