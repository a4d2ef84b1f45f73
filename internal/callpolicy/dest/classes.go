package dest

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Class is a set of destination classes a rule can match.
type Class uint8

// The destination classes.
const (
	// International is a destination outside the default country: another
	// country calling code, another region behind a shared code (+1 JM from
	// US, +44 GG from GB), or a non-geographic code (+800, +881, +979…).
	International Class = 1 << iota
	// Premium is a premium-rate number: the library's PREMIUM_RATE type, or
	// a prefix the class table marks premium (+979 IPRS).
	Premium
	// Satellite is a satellite or international-network number (+870, +881,
	// +882, +883), from the class table.
	Satellite
	// HighRisk is a destination the class table marks as a usual target of
	// international revenue share fraud.
	HighRisk
)

var classNames = [...]struct {
	c    Class
	name string
}{
	{International, "international"},
	{Premium, "premium"},
	{Satellite, "satellite"},
	{HighRisk, "high_risk"},
}

// ParseClass returns the class named s ("international", "premium",
// "satellite", "high_risk").
func ParseClass(s string) (Class, error) {
	for _, n := range classNames {
		if n.name == s {
			return n.c, nil
		}
	}
	return 0, fmt.Errorf("unknown destination class %q (want international, premium, satellite or high_risk)", s)
}

// Has reports whether every class in o is in c.
func (c Class) Has(o Class) bool { return o != 0 && c&o == o }

// String lists the classes in c, comma separated.
func (c Class) String() string {
	var b strings.Builder
	for _, n := range classNames {
		if c&n.c != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(n.name)
		}
	}
	return b.String()
}

// Entry is one line of a class table: the E.164 prefix and the classes it
// carries, what it is and where that comes from.
type Entry struct {
	Prefix  string   `yaml:"prefix"`
	Classes []string `yaml:"classes"`
	Name    string   `yaml:"name"`
	Source  string   `yaml:"source"`

	// Line is the entry's line in its file.
	Line int `yaml:"-"`
	set  Class
}

// Table maps E.164 prefixes to classes. The zero Table has no entries.
type Table struct {
	byPrefix map[string]Class
	maxLen   int
	entries  []Entry
}

// Entries returns the table's entries in file order.
func (t *Table) Entries() []Entry { return t.entries }

// lookup returns the union of the classes of every table prefix of digits
// (E.164 digits without "+").
func (t *Table) lookup(digits string) Class {
	var c Class
	for l := 1; l <= t.maxLen && l <= len(digits); l++ {
		c |= t.byPrefix[digits[:l]]
	}
	return c
}

//go:embed highrisk.yaml
var highRiskYAML []byte

// HighRiskTable returns the class table shipped with the package
// (highrisk.yaml): satellite and international-network codes, international
// premium rate, and the usual IRSF countries and ranges, each with a source.
func HighRiskTable() (*Table, error) {
	return ParseTable("highrisk.yaml", highRiskYAML)
}

// FileError is an error in a data file, with its position.
type FileError struct {
	File string
	Line int
	Msg  string
}

// Error renders "file:line: msg".
func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// ParseTable reads a class table: a YAML list of entries with the keys
// prefix ("+" and 1 to 15 digits), classes, name and source, all required.
// Errors are *FileError naming file and line.
func ParseTable(file string, data []byte) (*Table, error) {
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, &FileError{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	t := &Table{byPrefix: map[string]Class{}}
	if len(root.Content) == 0 {
		return t, nil
	}
	list := root.Content[0]
	if list.Kind != yaml.SequenceNode {
		return nil, &FileError{File: file, Line: list.Line, Msg: "want a list of entries"}
	}
	seen := map[string]int{}
	for _, n := range list.Content {
		e, err := parseEntry(n)
		if err != nil {
			return nil, &FileError{File: file, Line: n.Line, Msg: err.Error()}
		}
		if prev, dup := seen[e.Prefix]; dup {
			return nil, &FileError{File: file, Line: n.Line, Msg: fmt.Sprintf("prefix %s already listed on line %d", e.Prefix, prev)}
		}
		seen[e.Prefix] = e.Line
		d := e.Prefix[1:]
		t.byPrefix[d] |= e.set
		t.maxLen = max(t.maxLen, len(d))
		t.entries = append(t.entries, e)
	}
	return t, nil
}

func parseEntry(n *yaml.Node) (Entry, error) {
	var e Entry
	if n.Kind != yaml.MappingNode {
		return e, errors.New("want an entry with prefix, classes, name and source")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := n.Content[i].Value; k {
		case "prefix", "classes", "name", "source":
		default:
			return e, fmt.Errorf("unknown key %q", k)
		}
	}
	if err := n.Decode(&e); err != nil {
		return e, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	e.Line = n.Line
	if !isE164Prefix(e.Prefix) {
		return e, fmt.Errorf("prefix %q: want + and 1 to 15 digits", e.Prefix)
	}
	if len(e.Classes) == 0 {
		return e, fmt.Errorf("prefix %s: no classes", e.Prefix)
	}
	for _, s := range e.Classes {
		c, err := ParseClass(s)
		if err != nil {
			return e, fmt.Errorf("prefix %s: %w", e.Prefix, err)
		}
		if c == International {
			return e, fmt.Errorf("prefix %s: international is derived from the default country, not listed", e.Prefix)
		}
		e.set |= c
	}
	if strings.TrimSpace(e.Name) == "" || strings.TrimSpace(e.Source) == "" {
		return e, fmt.Errorf("prefix %s: name and source are required", e.Prefix)
	}
	return e, nil
}

func isE164Prefix(p string) bool {
	if len(p) < 2 || len(p) > 16 || p[0] != '+' || p[1] == '0' {
		return false
	}
	for i := 1; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}
