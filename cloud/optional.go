package cloud

import (
	"bytes"
	"encoding/json"
)

// Optional is a nullable field of an update (PATCH): absent leaves the
// stored value as is, null clears it, a value sets it. A plain pointer
// cannot tell absent from null in encoding/json, so "operator_id": null
// would silently change nothing.
//
// Tag it `json:",omitzero"` so that an unset field is left out when the
// update is encoded (the audit log does).
type Optional[T any] struct {
	Set   bool // the field was given
	Value *T   // nil: the field was null
}

// Some returns an Optional set to v.
func Some[T any](v T) Optional[T] { return Optional[T]{Set: true, Value: &v} }

// Null returns an Optional set to null.
func Null[T any]() Optional[T] { return Optional[T]{Set: true} }

// IsZero reports whether the field was not given (for omitzero).
func (o Optional[T]) IsZero() bool { return !o.Set }

// Apply copies a given value, or nil for null, into *dst.
func (o Optional[T]) Apply(dst **T) {
	if !o.Set {
		return
	}
	if o.Value == nil {
		*dst = nil
		return
	}
	v := *o.Value
	*dst = &v
}

// ApplyValue copies a given value, or T's zero value for null, into *dst:
// for types whose zero value means "not set", such as Date.
func (o Optional[T]) ApplyValue(dst *T) {
	if !o.Set {
		return
	}
	if o.Value == nil {
		var zero T
		*dst = zero
		return
	}
	*dst = *o.Value
}

// UnmarshalJSON implements json.Unmarshaler; it is called only when the
// field is present.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Value = &v
	return nil
}

// MarshalJSON implements json.Marshaler: the value, or null.
func (o Optional[T]) MarshalJSON() ([]byte, error) {
	if o.Value == nil {
		return []byte("null"), nil
	}
	return json.Marshal(*o.Value)
}
