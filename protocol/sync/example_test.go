package sync_test

import (
	"fmt"
	"time"

	vsync "varco.dev/protocol/sync"
)

// The cloud publishes a delta; an edge whose cache is at version 100 decodes
// it, checks it against the topic it arrived on, and applies it.
func Example() {
	tenantKey := []byte("the tenant's 32-byte secret key!")
	delta := &vsync.Delta{
		Header:  vsync.Header{Tenant: "fitclub", Site: "7", Time: vsync.TimestampOf(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))},
		Version: 101,
		Prev:    100,
		Upserts: []vsync.Record{{
			Member:      1001,
			Credentials: []vsync.Credential{{Key: vsync.CredentialHash(tenantKey, "card:123:45678")}},
			Valid:       []vsync.Window{{}},
			Devices:     vsync.DeviceSetOf(vsync.DeviceEntrance, vsync.DeviceExit),
			Actions: []vsync.Action{{ID: 555, Mode: vsync.AccessMessageBlock,
				Devices: vsync.DeviceSetOf(vsync.DeviceEntrance), Text: "Please see reception"}},
		}},
	}
	topic, _ := vsync.TopicFor(delta)
	payload, err := vsync.Marshal(delta)
	if err != nil {
		panic(err)
	}
	fmt.Printf("cloud publishes %d bytes on %s (QoS %d)\n", len(payload), topic, topic.Kind.QoS())

	// On the edge, for a message that arrived on topic name with payload b:
	name, b := topic.String(), payload
	t, err := vsync.ParseTopic(name)
	if err != nil {
		panic(err)
	}
	msg, err := vsync.Unmarshal(b)
	if err != nil {
		panic(err)
	}
	if err := t.Check(msg); err != nil {
		panic(err)
	}
	switch m := msg.(type) {
	case *vsync.Delta:
		fmt.Printf("edge at version 100: %s delta %d→%d, %d upserts\n", m.Step(100), m.Prev, m.Version, len(m.Upserts))
		fmt.Printf("edge at version 101: %s\n", m.Step(101))
		fmt.Printf("edge at version 99: %s from 99\n", m.Step(99))
	}
	// Output:
	// cloud publishes 105 bytes on varco/v1/fitclub/site/7/state (QoS 1)
	// edge at version 100: apply delta 100→101, 1 upserts
	// edge at version 101: skip
	// edge at version 99: catch-up from 99
}

func ExampleParseTopic() {
	t, err := vsync.ParseTopic("varco/v1/fitclub/edge/gate-1/events")
	fmt.Println(t.Kind, t.Tenant, t.Edge, t.Kind.Publisher(), err)
	_, err = vsync.ParseTopic("varco/v1/fitclub/edge/+/events")
	fmt.Println(err)
	// Output:
	// events fitclub gate-1 edge <nil>
	// sync: invalid topic events: edge: invalid id "+": byte '+' at 0; want a-z, 0-9 or '-' (not first) (in "varco/v1/fitclub/edge/+/events")
}

func ExampleCredentialHash() {
	k := vsync.CredentialHash([]byte("the tenant's 32-byte secret key!"), "card:123:45678")
	fmt.Println(len(k), k)
	// Output: 16 2d5aea2af5f55f3f6814695d84030bf1
}
