package cloud_test

import (
	"errors"
	"strings"
	"testing"

	"varco.dev/cloud"
)

func TestTenantValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		slug  string
		field string // "" when valid
	}{
		{"fitclub", ""},
		{"milano-centro-2", ""},
		{strings.Repeat("a", 56), ""}, // its key ids "<slug>-<n>" stay sync ids
		{strings.Repeat("a", 57), "slug"},
		{"a", "slug"},
		{"Fit", "slug"},
		{"-fit", "slug"},
		{"fit club", "slug"},
		{"fit/club", "slug"},
		{"fit+", "slug"},
	}
	for _, tt := range tests {
		tn := cloud.Tenant{Name: "Club", Slug: tt.slug}
		err := tn.Validate()
		if got := fieldOf(err); got != tt.field {
			t.Errorf("slug %q: error %v, want field %q", tt.slug, err, tt.field)
		}
	}
}

func fieldOf(err error) string {
	var e *cloud.Error
	switch {
	case err == nil:
		return ""
	case !errors.As(err, &e):
		return "?"
	}
	return e.Field
}
