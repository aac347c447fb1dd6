// Package mqtt is the MQTT broker that varco-cloud embeds by default: a
// mochi-mqtt v2 server on one TCP address (DefaultAddr, 127.0.0.1:1884; 1883
// is left to a system Mosquitto) with an authentication and ACL hook that
// confines every edge to its own topics of the protocol/sync layout.
//
// # Users
//
// Every client authenticates with a username and a password, checked
// against an argon2id hash (github.com/alexedwards/argon2id) that a
// Credentials store returns for the username. Two kinds of user:
//
//   - an edge: username "{tenant}/{edge}" (EdgeUsername), both parts sync
//     ids, so the username names the edge without a lookup and never contains
//     a wildcard. Its client id must equal its username, so that no client
//     can take over (and inherit the subscriptions of) another edge's
//     session; its last will, if any, must be on its own status topic.
//   - the cloud: a Credential with Cloud set, under a username without a '/'
//     (e.g. "cloud"). It may publish and subscribe anything, shared
//     subscriptions and wildcards included. The cloud talks to this broker
//     over TCP like any client, so that the same code works against an
//     external broker.
//
// A connect with an unknown username, a wrong password, a mismatched client
// id or a foreign will topic is refused: CONNACK "not authorized" (5) on
// MQTT 3.1.1, "bad username or password" (0x86) on MQTT 5.
// Password checks are argon2id and deliberately expensive: at most
// Config.MaxConcurrentAuth run at once.
//
// # ACL
//
// Edge E of tenant T at site S may (see protocol/sync's topic table):
//
//	publish    varco/v1/T/edge/E/{events,birth,status,catchup}
//	subscribe  varco/v1/T/site/S/state and varco/v1/T/edge/E/{sync,ack,cmd}
//
// and nothing else: topics are parsed with sync.ParseTopic, so wildcards,
// shared subscriptions, $SYS, other tenants, other sites, other edges,
// topics the cloud publishes and malformed ids are all refused. A refused
// subscription gets a failure return code in its SUBACK (0x80 on MQTT 3.1.1,
// 0x87 on MQTT 5). A refused QoS 0 publish is dropped silently; a refused
// QoS 1 or 2 publish disconnects an MQTT 3.1.1 client (the protocol has no
// negative PUBACK) and gets a "not authorized" PUBACK on MQTT 5. An edge's
// retain flag is honoured only on its status topic; elsewhere it is cleared.
//
// The ACL is decided from the credential looked up at connect time: a
// changed password or site applies from the edge's next connect.
//
// # Mosquitto
//
// An external Mosquitto 2.0 can take the embedded broker's place with the
// same policy: WriteMosquittoACL writes its acl_file from the rule Allowed
// applies, WriteMosquittoPasswords its password_file (MosquittoHash, the
// format of mosquitto_passwd), for the users of a users file (ParseUsers);
// `varco-cloud mosquitto-config` runs them. Mosquitto enforces the publish
// and read ACL; it grants every subscription, replaces a client id with the
// username rather than refusing it, and keeps the retain flag where this
// broker clears it: deploy/mosquitto/README.md lists the differences, and
// the tests run one table against both brokers.
//
// # Lifecycle
//
// New validates a Config; Start binds the address and serves until Stop or
// until Start's context is cancelled; Stop disconnects every client and
// returns when the broker has shut down. mochi's logs go to the Config's
// slog.Logger.
package mqtt
