package policies

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	cases := []struct {
		name    string
		in      Policy
		want    Policy
		wantErr string
	}{
		{"deny", Policy{Mode: DenyAll}, Policy{Mode: DenyAll}, ""},
		{"allow-all", Policy{Mode: AllowAll}, Policy{Mode: AllowAll}, ""},
		{"allow normalizes", Policy{Mode: Allow, Domains: []string{" Registry.NPMjs.org. ", "*.githubusercontent.com", "registry.npmjs.org"}},
			Policy{Mode: Allow, Domains: []string{"*.githubusercontent.com", "registry.npmjs.org"}}, ""},
		{"missing mode", Policy{}, Policy{}, "mode is required"},
		{"unknown mode", Policy{Mode: "open"}, Policy{}, "unknown mode"},
		{"domains on deny", Policy{Mode: DenyAll, Domains: []string{"a.com"}}, Policy{}, "takes no domains"},
		{"empty allow", Policy{Mode: Allow}, Policy{}, "at least one domain"},
		{"empty domain", Policy{Mode: Allow, Domains: []string{" "}}, Policy{}, "empty domain"},
		{"port", Policy{Mode: Allow, Domains: []string{"a.com:443"}}, Policy{}, "port"},
		{"wildcard in the middle", Policy{Mode: Allow, Domains: []string{"a.*.com"}}, Policy{}, "wildcard"},
		{"partial wildcard", Policy{Mode: Allow, Domains: []string{"*foo.com"}}, Policy{}, "wildcard"},
		{"bare wildcard", Policy{Mode: Allow, Domains: []string{"*"}}, Policy{}, "wildcard"},
		{"bad char", Policy{Mode: Allow, Domains: []string{"a_b.com"}}, Policy{}, "contains"},
		{"hyphen edge", Policy{Mode: Allow, Domains: []string{"-a.com"}}, Policy{}, "'-'"},
		{"empty label", Policy{Mode: Allow, Domains: []string{"a..com"}}, Policy{}, "empty or over-long"},
		{"long label", Policy{Mode: Allow, Domains: []string{strings.Repeat("a", 64) + ".com"}}, Policy{}, "empty or over-long"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Normalize(c.in)
			if c.wantErr != "" {
				if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Normalize(%+v) = %v, want an ErrInvalid mentioning %q", c.in, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Normalize(%+v) = %+v, want %+v", c.in, got, c.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	for _, c := range []struct {
		p    Policy
		want string
	}{
		{Deny(), "deny-all"},
		{Policy{Mode: AllowAll}, "allow-all"},
		{Policy{Mode: Allow, Domains: []string{"a.com", "*.b.com"}}, "allow:a.com,*.b.com"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("%+v.String() = %q, want %q", c.p, got, c.want)
		}
	}
}
