package dest

import (
	"errors"
	"strings"
	"testing"
)

func TestHighRiskTable(t *testing.T) {
	tab, err := HighRiskTable()
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Entries()) < 20 {
		t.Fatalf("shipped table has %d entries", len(tab.Entries()))
	}
	for _, e := range tab.Entries() {
		if !strings.Contains(e.Source, "http") {
			t.Errorf("highrisk.yaml:%d %s: source %q has no address", e.Line, e.Prefix, e.Source)
		}
	}
	for _, p := range []string{"+881", "+882", "+883", "+870"} {
		if c := tab.lookup(p[1:] + "1234567"); !c.Has(Satellite) {
			t.Errorf("%s not satellite: %v", p, c)
		}
	}
}

func TestParseTableErrors(t *testing.T) {
	tests := []struct {
		name, data string
		line       int
		msg        string
	}{
		{"unknown key", "- prefix: \"+53\"\n  classes: [high_risk]\n  name: Cuba\n  source: x\n- prefix: \"+371\"\n  clases: [high_risk]\n", 5, `unknown key "clases"`},
		{"no source", "- prefix: \"+53\"\n  classes: [high_risk]\n  name: Cuba\n", 1, "name and source are required"},
		{"bad prefix", "- prefix: \"0053\"\n  classes: [high_risk]\n  name: Cuba\n  source: x\n", 1, "want + and 1 to 15 digits"},
		{"bad class", "- prefix: \"+53\"\n  classes: [pricey]\n  name: Cuba\n  source: x\n", 1, "unknown destination class"},
		{"international listed", "- prefix: \"+53\"\n  classes: [international]\n  name: Cuba\n  source: x\n", 1, "derived from the default country"},
		{"duplicate", "- {prefix: \"+53\", classes: [high_risk], name: a, source: b}\n- {prefix: \"+53\", classes: [premium], name: a, source: b}\n", 2, "already listed on line 1"},
		{"not a list", "prefix: \"+53\"\n", 1, "want a list"},
		{"syntax", "- [\n", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTable("mine.yaml", []byte(tc.data))
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *FileError", err)
			}
			if fe.File != "mine.yaml" || (tc.line > 0 && fe.Line != tc.line) || !strings.Contains(fe.Msg, tc.msg) {
				t.Errorf("err = %v, want mine.yaml:%d ... %s", err, tc.line, tc.msg)
			}
		})
	}
}

func TestCustomTable(t *testing.T) {
	tab, err := ParseTable("mine.yaml", []byte("- {prefix: \"+4420\", classes: [high_risk], name: London, source: our fraud desk}\n"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Options{DefaultCountry: "CN", Table: tab})
	if err != nil {
		t.Fatal(err)
	}
	if r := n.Normalize("0044 20 7946 0000"); !r.Classes.Has(HighRisk) {
		t.Errorf("custom entry not applied: %+v", r)
	}
	if r := n.Normalize("+5352345678"); r.Classes.Has(HighRisk) {
		t.Errorf("custom table still has the shipped entries: %+v", r)
	}
}
