package mapping

import (
	"errors"
	"strings"
	"testing"
)

func TestTemplateRender(t *testing.T) {
	path := mustRefT(t, "/Objects/2:Line1/{urn:plant}Motor.1/Speed").Path()
	tests := []struct {
		syn  Syntax
		tmpl string
		vars Vars
		want string
	}{
		{NATS, "{prefix}.{server}.{name}", Vars{Prefix: "rcbridge", Server: "urn:plant:line1", Name: "Speed"}, "rcbridge.urn:plant:line1.Speed"},
		{MQTT, "{prefix}/{server}/{name}", Vars{Prefix: "plant/a", Server: "urn:plant:line1", Name: "Speed"}, "plant/a/urn:plant:line1/Speed"},
		{NATS, "{prefix}.{server}.{name}", Vars{Prefix: "p", Server: "urn:acme.com:l 1", Name: "a.b*c"}, "p.urn:acme%2Ecom:l%201.a%2Eb%2Ac"},
		{MQTT, "{prefix}/{server}/{name}", Vars{Prefix: "p", Server: "http://h/x", Name: "a/b#"}, "p/http:%2F%2Fh%2Fx/a%2Fb%23"},
		{NATS, "{prefix}.{server}.{path}", Vars{Prefix: "p", Server: "s", Path: path}, "p.s.Line1.Motor%2E1.Speed"},
		{MQTT, "{prefix}/{server}/{path}", Vars{Prefix: "p", Server: "s", Path: path}, "p/s/Line1/Motor.1/Speed"},
		{NATS, "{prefix}.raw.{node}", Vars{Prefix: "p", Node: "nsu=urn:x;s=A.B"}, "p.raw.nsu=urn:x;s=A%2EB"},
		{MQTT, "{prefix}/raw/{node}", Vars{Prefix: "p", Node: "/Objects/2:X"}, "p/raw/%2FObjects%2F2:X"},
		{NATS, "fixed.{{literal}}.{name}", Vars{Name: "n"}, "fixed.{literal}.n"},
		{NATS, "plant.{name}.value", Vars{Name: "$x"}, "plant.%24x.value"},
	}
	for _, tt := range tests {
		t.Run(tt.syn.String()+"/"+tt.tmpl, func(t *testing.T) {
			tm, err := ParseTemplate(tt.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			if tm.String() != tt.tmpl {
				t.Fatalf("String() = %q", tm.String())
			}
			got, err := tm.Render(tt.syn, tt.vars)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Render = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTemplatePathDropsObjectsOnlyAtTheStart(t *testing.T) {
	tm, _ := ParseTemplate("{path}")
	for in, want := range map[string]string{
		"/Objects":            "Objects",
		"/Objects/A/Objects":  "A.Objects",
		"/2:Objects/A":        "Objects.A",
		"/Types/Objects":      "Types.Objects",
		"/Objects/Server/3:B": "Server.B",
	} {
		got, err := tm.Render(NATS, Vars{Path: mustRefT(t, in).Path()})
		if err != nil || got != want {
			t.Errorf("{path} of %s = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	tests := []struct{ tmpl, msg string }{
		{"{prefix}.{bogus}", "unknown variable {bogus}; known: {prefix} {server} {name} {path} {node}"},
		{"{prefix}.{name", "unclosed '{' at byte 9"},
		{"a}b", "unmatched '}' at byte 1"},
		{"{}", "unknown variable {}"},
		{"{Name}", "unknown variable {Name}"},
	}
	for _, tt := range tests {
		_, err := ParseTemplate(tt.tmpl)
		if !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseTemplate(%q) = %v, want ErrTemplate containing %q", tt.tmpl, err, tt.msg)
		}
	}
	renderErrs := []struct {
		syn       Syntax
		tmpl, msg string
		vars      Vars
	}{
		{NATS, "{prefix}.{path}", "{path} needs a browse_path row", Vars{Prefix: "p"}},
		{NATS, "{prefix}.*.{name}", "wildcard '*'", Vars{Prefix: "p", Name: "n"}},
		{MQTT, "{prefix}/+/{name}", "wildcard '+'", Vars{Prefix: "p", Name: "n"}},
		{NATS, "{prefix}..{name}", "empty token", Vars{Prefix: "p", Name: "n"}},
		{NATS, "{prefix}.{name}", "empty token", Vars{Prefix: "p", Name: ""}},
		{NATS, "has space.{name}", "whitespace", Vars{Name: "n"}},
		{MQTT, "$SYS/{name}", "reserved", Vars{Name: "n"}},
	}
	for _, tt := range renderErrs {
		tm, err := ParseTemplate(tt.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tm.Render(tt.syn, tt.vars)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Render(%q) = %v, want error containing %q", tt.tmpl, err, tt.msg)
		}
	}
}

func mustRefT(t testing.TB, s string) NodeRef {
	t.Helper()
	r, err := ParseNodeRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// FuzzRender feeds arbitrary templates and variable values (both can come
// from a configuration file written by anyone) through ParseTemplate and
// Render. Whatever the input: no panic; a successful render is a route the
// bus accepts; {name} renders to exactly one token that decodes back to the
// name; and different names never render the same route.
func FuzzRender(f *testing.F) {
	// Seeds: the default templates, every variable, escapes, and the
	// characters each bus reserves.
	f.Add("{prefix}.{server}.{name}", "rcbridge", "urn:plant:line1", "Speed", "/Objects/2:Line1/2:Speed", false)
	f.Add("{prefix}/{server}/{name}", "plant/a", "urn:acme.com:line 1", "a/b+c#d", "/Objects/{urn:x}Y", true)
	f.Add("{prefix}.{server}.{path}", "p", "s", "n", "/Objects/2:Motor.1/Speed", false)
	f.Add("{{lit}}.{node}.{name}", "p", "s", "$SYS", "/a&/b", false)
	f.Add("{prefix}.{name}.{bogus}", "p", "s", "n", "/x", true)
	f.Add("a}}b{{c.{name}", "p", "s", "%2E", "/x", false)
	f.Add("{prefix}..{name}", "$p", "s", "\xff\x00 \u2028", "/x", true)
	f.Fuzz(func(t *testing.T, tmpl, prefix, server, name, path string, mqtt bool) {
		syn := NATS
		if mqtt {
			syn = MQTT
		}
		tm, err := ParseTemplate(tmpl)
		if err != nil {
			if !errors.Is(err, ErrTemplate) {
				t.Fatalf("parse error without ErrTemplate: %v", err)
			}
			return
		}
		vars := Vars{Prefix: prefix, Server: server, Name: name, Node: path}
		if ref, err := ParseBrowsePath(path); err == nil {
			vars.Path = ref.Path()
		}
		got, err := tm.Render(syn, vars)
		if err != nil {
			return
		}
		if err := ValidateRoute(syn, got); err != nil {
			t.Fatalf("Render(%q) = %q which is invalid: %v", tmpl, got, err)
		}
		again, _ := tm.Render(syn, vars)
		if again != got {
			t.Fatalf("Render is not deterministic: %q then %q", got, again)
		}
		// {name} as the last token: it must decode back to the name, and a
		// different name must give a different route.
		nameOnly, _ := ParseTemplate("p" + string(syn.Separator()) + "{name}")
		r1, err := nameOnly.Render(syn, Vars{Name: name})
		if err != nil {
			if name != "" {
				t.Fatalf("a non-empty name %q did not render: %v", name, err)
			}
			return
		}
		tok := r1[2:]
		if back, err := UnescapeKey(tok); err != nil || back != name {
			t.Fatalf("token %q decodes to %q, %v; want %q", tok, back, err, name)
		}
		r2, err := nameOnly.Render(syn, Vars{Name: name + "."})
		if err == nil && r2 == r1 {
			t.Fatalf("names %q and %q render the same route %q", name, name+".", r1)
		}
	})
}
