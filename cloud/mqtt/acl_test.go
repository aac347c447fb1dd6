package mqtt_test

import (
	"testing"

	"varco.dev/cloud/mqtt"
)

func TestAllowed(t *testing.T) {
	t.Parallel()
	edge := mqtt.Credential{Username: "t1/e1", Tenant: "t1", Site: "s1", Edge: "e1"}
	cloud := mqtt.Credential{Username: "cloud", Cloud: true}
	for _, tc := range []struct {
		cred  mqtt.Credential
		topic string
		write bool
		want  bool
	}{
		{edge, "varco/v1/t1/edge/e1/events", true, true},
		{edge, "varco/v1/t1/edge/e1/birth", true, true},
		{edge, "varco/v1/t1/edge/e1/status", true, true},
		{edge, "varco/v1/t1/edge/e1/catchup", true, true},
		{edge, "varco/v1/t1/edge/e1/sync", true, false},
		{edge, "varco/v1/t1/edge/e1/ack", true, false},
		{edge, "varco/v1/t1/edge/e1/cmd", true, false},
		{edge, "varco/v1/t1/site/s1/state", true, false},
		{edge, "varco/v1/t1/edge/e2/events", true, false},
		{edge, "varco/v1/t2/edge/e1/events", true, false},
		{edge, "varco/v1/t1/edge/+/events", true, false},

		{edge, "varco/v1/t1/site/s1/state", false, true},
		{edge, "varco/v1/t1/edge/e1/sync", false, true},
		{edge, "varco/v1/t1/edge/e1/ack", false, true},
		{edge, "varco/v1/t1/edge/e1/cmd", false, true},
		{edge, "varco/v1/t1/edge/e1/events", false, false},
		{edge, "varco/v1/t1/edge/e1/status", false, false},
		{edge, "varco/v1/t1/site/s2/state", false, false},
		{edge, "varco/v1/t2/site/s1/state", false, false},
		{edge, "varco/v1/t1/edge/e2/cmd", false, false},
		{edge, "varco/v1/t1/site/+/state", false, false},
		{edge, "varco/v1/#", false, false},
		{edge, "$share/g/varco/v1/t1/site/s1/state", false, false},
		{edge, "", false, false},
		{mqtt.Credential{}, "varco/v1/t1/site/s1/state", false, false}, // zero credential: nothing

		{cloud, "varco/v1/t1/site/s1/state", true, true},
		{cloud, "$share/cloud/varco/v1/+/edge/+/events", false, true},
		{cloud, "#", false, true},
	} {
		if got := mqtt.Allowed(tc.cred, tc.topic, tc.write); got != tc.want {
			t.Errorf("Allowed(%s, %q, write=%v) = %v, want %v", tc.cred.Username, tc.topic, tc.write, got, tc.want)
		}
	}
}

func TestCredentialValidate(t *testing.T) {
	t.Parallel()
	creds := mqtt.NewMemCredentials(cheap)
	for _, tc := range []struct{ tenant, site, edge, password string }{
		{"T1", "s1", "e1", password}, // upper case
		{"t1", "", "e1", password},   // no site
		{"t1", "s1", "e/1", password},
		{"t1", "s1", "e1", ""},
	} {
		if _, err := creds.AddEdge(tc.tenant, tc.site, tc.edge, tc.password); err == nil {
			t.Errorf("AddEdge(%q, %q, %q, %q): no error", tc.tenant, tc.site, tc.edge, tc.password)
		}
	}
	if err := creds.AddCloud("t1/cloud", password); err == nil {
		t.Error("AddCloud with a '/': no error")
	}
	if _, err := creds.Credential(t.Context(), "t1/e1"); err == nil {
		t.Error("Credential of an unknown user: no error")
	}
}
