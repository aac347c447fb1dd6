package sync

// ProtocolVersion is the version of the sync protocol that this code speaks:
// a single integer that grows by one whenever a side gains a message, a field
// or an enum value, or a rule changes meaning. Every Envelope carries its
// sender's ProtocolVersion, so the cloud learns each edge's version from its
// Birth and never sends it a message kind, field or enum value that is newer
// than that version; an edge reads the cloud's version from every envelope.
//
// Bumping it is cheap and breaks nothing: a receiver decodes messages from a
// newer version and skips the fields it does not know (see the package doc).
// Only a change that an old receiver would misread needs a new topic prefix
// (varco/v2/...), and that should never be necessary.
//
// History of versions (add a dated line with every bump):
//
//   - 1 (2026-11-25): first version: state deltas and snapshots, catch-up,
//     birth and status, passage event batches and acks, edge commands;
//     envelope with room for an Ed25519 signature.
//   - 2 (2026-11-26): the site's OfflinePolicy in Delta.Policy and
//     Snapshot.Policy; reasons stale and stale-open; event command-done. Cloud messages are
//     signed.
const ProtocolVersion = 2
