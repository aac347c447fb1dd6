package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	vsync "varco.dev/protocol/sync"
	"varco.dev/protocol/wiegand"
)

// jsonRecord is one NDJSON line; ParseLine documents it.
type jsonRecord struct {
	Member      uint64           `json:"member"`
	Credentials []jsonCredential `json:"credentials"`
	Valid       []jsonWindow     `json:"valid"`
	Sites       []string         `json:"sites"`
	Devices     []string         `json:"devices"`
	Suspended   bool             `json:"suspended"`
	Actions     []jsonAction     `json:"actions"`
	Notices     []jsonNotice     `json:"notices"`
}

type jsonWindow struct {
	From  string `json:"from"`
	Until string `json:"until"`
}

type jsonCredential struct {
	ID  string `json:"id"`
	Key string `json:"key"`
	jsonWindow
}

// UnmarshalJSON takes a credential as a string, its canonical id, or as an
// object.
func (c *jsonCredential) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &c.ID)
	}
	type plain jsonCredential
	return strict(b, (*plain)(c))
}

type jsonAction struct {
	ID       uint64   `json:"id"`
	Mode     string   `json:"mode"`
	Devices  []string `json:"devices"`
	Text     string   `json:"text"`
	Priority uint8    `json:"priority"`
}

type jsonNotice struct {
	Text     string `json:"text"`
	Priority uint8  `json:"priority"`
	jsonWindow
}

// strict decodes one JSON value, refusing unknown fields and trailing data.
func strict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the record")
	}
	return nil
}

// ParseLine parses one NDJSON line into a record, and validates it. The
// line is an object with these fields; every one but member is optional:
//
//	{
//	  "member": 1001,                          the cloud's member reference, not 0
//	  "credentials": [                         canonical ids, hashed with tenantKey:
//	    "card:118:1603",                       a card (facility:number), see protocol/wiegand
//	    "pin:0042",                            a keypad PIN
//	    {"id": "card:118:1604", "from": "2026-01-01T00:00:00+01:00", "until": "..."},
//	    {"key": "32 hex digits"}               or a key hashed already
//	  ],
//	  "valid": [{"from": "2026-01-01T00:00:00+01:00", "until": "2027-01-01T00:00:00+01:00"}],
//	  "sites": ["7"],                          none: every site of the tenant
//	  "devices": ["entrance", "exit"],         none: every device type
//	  "suspended": false,
//	  "actions": [{"id": 7001, "mode": "message_block", "devices": ["entrance"],
//	               "text": "Please see reception", "priority": 10}],
//	  "notices": [{"text": "Happy birthday Anna", "priority": 1, "from": "...", "until": "..."}]
//	}
//
// Times are RFC 3339 with a zone offset; a window without from or until is
// open on that side, {} is always; a member without valid windows has no
// access (like the sync protocol's Record). Device names are
// vsync.DeviceType's (entrance, exit, door, spa, pool, locker), modes
// AccessMode's (none, message, message_block). As in the cloud, a record or
// action that lists no device type applies to all of them. Unknown fields
// are errors, so that a typo does not go unnoticed.
func ParseLine(line []byte, tenantKey []byte) (vsync.Record, error) {
	var j jsonRecord
	if err := strict(line, &j); err != nil {
		return vsync.Record{}, err
	}
	r := vsync.Record{Member: vsync.MemberRef(j.Member), Sites: j.Sites, Suspended: j.Suspended}
	var err error
	if r.Devices, err = devices(j.Devices); err != nil {
		return r, err
	}
	for i, c := range j.Credentials {
		cred := vsync.Credential{}
		if cred.Valid, err = window(c.jsonWindow); err != nil {
			return r, fmt.Errorf("credentials[%d]: %w", i, err)
		}
		switch {
		case c.ID != "" && c.Key != "":
			return r, fmt.Errorf("credentials[%d]: both id and key", i)
		case c.Key != "":
			if cred.Key, err = vsync.ParseCredentialKey(c.Key); err != nil {
				return r, fmt.Errorf("credentials[%d]: %w", i, err)
			}
		case len(tenantKey) == 0:
			return r, fmt.Errorf("credentials[%d]: credential ids need the tenant key", i)
		default:
			k, err := wiegand.ParseKey(c.ID)
			if err != nil {
				return r, fmt.Errorf("credentials[%d]: %w", i, err)
			}
			cred.Key = vsync.CredentialHash(tenantKey, k.String())
		}
		r.Credentials = append(r.Credentials, cred)
	}
	for i, w := range j.Valid {
		v, err := window(w)
		if err != nil {
			return r, fmt.Errorf("valid[%d]: %w", i, err)
		}
		r.Valid = append(r.Valid, v)
	}
	for i, a := range j.Actions {
		act := vsync.Action{ID: a.ID, Text: a.Text, Priority: a.Priority}
		if act.Mode, err = mode(a.Mode); err != nil {
			return r, fmt.Errorf("actions[%d]: %w", i, err)
		}
		if act.Devices, err = devices(a.Devices); err != nil {
			return r, fmt.Errorf("actions[%d]: %w", i, err)
		}
		r.Actions = append(r.Actions, act)
	}
	for i, n := range j.Notices {
		not := vsync.Notice{Text: n.Text, Priority: n.Priority}
		if not.Valid, err = window(n.jsonWindow); err != nil {
			return r, fmt.Errorf("notices[%d]: %w", i, err)
		}
		r.Notices = append(r.Notices, not)
	}
	return r, r.Validate()
}

func window(w jsonWindow) (vsync.Window, error) {
	var out vsync.Window
	for _, f := range []struct {
		s  string
		ts *vsync.Timestamp
	}{{w.From, &out.From}, {w.Until, &out.Until}} {
		if f.s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, f.s)
		if err != nil {
			return out, fmt.Errorf("time %q is not RFC 3339 (2026-01-31T00:00:00+01:00)", f.s)
		}
		if *f.ts = vsync.TimestampOf(t); *f.ts <= 0 {
			return out, fmt.Errorf("time %q before 1970", f.s)
		}
	}
	return out, nil
}

func devices(names []string) (vsync.DeviceSet, error) {
	if len(names) == 0 {
		return vsync.AllDevices, nil
	}
	var s vsync.DeviceSet
	for _, n := range names {
		d, err := vsync.ParseDeviceType(n)
		if err != nil {
			return 0, err
		}
		s |= vsync.DeviceSetOf(d)
	}
	return s, nil
}

func mode(name string) (vsync.AccessMode, error) {
	for m := vsync.AccessNone; m.Valid(); m++ {
		if m.String() == name {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown mode %q (want none, message or message_block)", name)
}
