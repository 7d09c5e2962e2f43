package policies

import (
	"reflect"
	"testing"
)

func TestMatchPattern(t *testing.T) {
	cases := []struct {
		pattern, host string
		want          bool
	}{
		{"example.com", "example.com", true},
		{"example.com", "EXAMPLE.com", true},
		{"Example.COM", "example.com", true},
		{"example.com", "example.com.", true},
		{"example.com.", "example.com", true},
		{"example.com", "a.example.com", false},
		{"example.com", "notexample.com", false},
		{"example.com", "example.com.evil.org", false},
		{"*.example.com", "example.com", false},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "A.Example.Com.", true},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "a.b.c.d.example.com", true},
		{"*.example.com", "notexample.com", false},
		{"*.example.com", "aexample.com", false},
		{"*.example.com", ".example.com", false},
		{"*.example.com", "a..example.com", false},
		{"*.example.com", "example.com.evil.org", false},
		{"*.example.com", "*.example.com", false},
		{"*.example.com", "a.example.com:443", false},
		{"*.b.example.com", "a.example.com", false},
		{"*", "example.com", false},
		{"*", "*", false},
		{"", "", false},
		{"example.com", "", false},
		{"*.", "a.", false},
		{"a.*.com", "a.b.com", false},
	}
	for _, c := range cases {
		if got := MatchPattern(c.pattern, c.host); got != c.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", c.pattern, c.host, got, c.want)
		}
	}
}

func TestMatchPrecedence(t *testing.T) {
	// Each pattern gets a distinct header so the test sees which rule won.
	svc := func(id, pattern string) Service {
		return custom(id, []string{pattern}, Header{Name: "x-rule", Credential: Credential{Value: pattern}})
	}
	rules, err := Compile(allow(
		svc("exact", "api.b.example.com"),
		svc("apex", "example.com"),
		svc("wide", "*.example.com"),
		svc("narrow", "*.b.example.com"),
		svc("zed", "*.z.example.com"), // sorts after *.example.com: order must not decide
	), nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		host    string
		pattern string // "" when no match
	}{
		{"example.com", "example.com"},
		{"a.example.com", "*.example.com"},
		{"b.example.com", "*.example.com"}, // *.b.example.com never matches b.example.com itself
		{"x.b.example.com", "*.b.example.com"},
		{"deep.x.b.example.com", "*.b.example.com"},
		{"api.b.example.com", "api.b.example.com"},
		{"API.B.Example.COM.", "api.b.example.com"},
		{"v2.api.b.example.com", "*.b.example.com"},
		{"q.z.example.com", "*.z.example.com"},
		{"z.example.com", "*.example.com"},
		{"example.org", ""},
		{"notexample.com", ""},
		{"", ""},
		{"a.example.com:443", ""},
	}
	for _, c := range cases {
		rule, ok := rules.Match(c.host)
		if ok != (c.pattern != "") || rule.Pattern != c.pattern {
			t.Errorf("Match(%q) = %q, %v; want %q", c.host, rule.Pattern, ok, c.pattern)
			continue
		}
		if ok && rule.Headers["x-rule"] != c.pattern {
			t.Errorf("Match(%q) headers = %v, want the rule of %q", c.host, rule.Headers, c.pattern)
		}
	}
}

func TestMatchModes(t *testing.T) {
	if rule, ok := (Rules{Mode: AllowAll}).Match("anything.example"); !ok || !reflect.DeepEqual(rule, HostRule{}) {
		t.Errorf("allow-all: %v %v, want the zero rule and true", rule, ok)
	}
	if _, ok := (Rules{Mode: DenyAll, Hosts: []HostRule{{Pattern: "a.com"}}}).Match("a.com"); ok {
		t.Error("deny-all matched")
	}
	if _, ok := (Rules{}).Match("a.com"); ok {
		t.Error("the zero Rules matched")
	}
	if _, ok := (Rules{Mode: Allow}).Match("a.com"); ok {
		t.Error("allow with no hosts matched")
	}
}

func TestMatchMergesOnePattern(t *testing.T) {
	// Rules built by hand (not by Compile) may repeat a pattern; Match merges them.
	r := Rules{Mode: Allow, Hosts: []HostRule{
		{Pattern: "API.example.com", Service: "a", Headers: map[string]string{"x-a": "1"}},
		{Pattern: "*.example.com", Service: "w", Headers: map[string]string{"x-w": "1"}},
		{Pattern: "api.example.com.", Service: "b", Headers: map[string]string{"x-b": "2"}},
	}}
	rule, ok := r.Match("api.example.com")
	want := HostRule{Pattern: "api.example.com", Service: "a,b", Headers: map[string]string{"x-a": "1", "x-b": "2"}}
	if !ok || !reflect.DeepEqual(rule, want) {
		t.Fatalf("Match = %#v, want %#v", rule.Headers, want.Headers)
	}
	rule.Headers["x-a"] = "changed"
	if r.Hosts[0].Headers["x-a"] != "1" {
		t.Fatal("Match returned the rules' own map")
	}
}
