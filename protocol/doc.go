// Package protocol holds the wire formats that varco-edge, varco-cloud and
// varco-sim share: OSDP (protocol/osdp), Wiegand (protocol/wiegand) and the
// MQTT sync messages (protocol/sync).
//
// protocol is a leaf module: it imports nothing of edge, cloud or
// firmware-sim, and none of their adapters' dependencies (badger, pgx, paho,
// periph, chi). deps_test.go enforces it.
package protocol

// Version is the software version stamped into binaries at build time with
// -ldflags "-X varco.dev/protocol.Version=...". It is shared so that every
// binary and the sync birth message report the same string.
var Version = "dev"
