// Package rates holds a rate table, destination prefix to cost per minute,
// and answers what a call to a number costs: longest-prefix match over
// E.164 numbers and an estimate for a duration. It does no I/O after Load.
package rates

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Rate is one row of a rate table.
type Rate struct {
	// Prefix is "+" and digits ("+44", "+4479").
	Prefix string
	// Name is what the destination is, for reports ("United Kingdom mobile").
	Name      string
	PerMinute Amount
	// Currency is the ISO 4217 code ("USD").
	Currency string
	// Increment is the billing step in seconds: a call is charged for its
	// duration rounded up to a multiple of it (1 is per second, 60 per
	// minute).
	Increment int
	// Line is where the row is in its file.
	Line int
}

// Cost returns what a call of duration d costs at r: d rounded up to the
// billing increment, times the per-minute rate, rounded up to the
// millionth. A non-positive duration costs nothing.
func (r Rate) Cost(d time.Duration) Amount {
	if d <= 0 {
		return 0
	}
	inc := int64(max(r.Increment, 1))
	secs := int64((d + time.Second - 1) / time.Second)
	secs = (secs + inc - 1) / inc * inc
	return Amount(mulDivCeil(int64(r.PerMinute), secs, 60))
}

// Table is a compiled rate table: one map from digit prefix to row, probed
// from the longest prefix length present down to the shortest. It is
// read-only once built and safe for concurrent use.
type Table struct {
	rows    []Rate
	index   map[string]int32
	lengths []int // distinct prefix lengths in digits, longest first
	source  string
}

// Len returns the number of rows.
func (t *Table) Len() int { return len(t.rows) }

// Source returns the file's source line: where the rates come from.
func (t *Table) Source() string { return t.source }

// Lookup returns the row with the longest prefix of e164 ("+447400123456"),
// or false when no row covers it or e164 is not "+" and digits.
func (t *Table) Lookup(e164 string) (Rate, bool) {
	if len(e164) < 2 || e164[0] != '+' {
		return Rate{}, false
	}
	d := e164[1:]
	for _, l := range t.lengths {
		if l > len(d) {
			continue
		}
		if i, ok := t.index[d[:l]]; ok {
			return t.rows[i], true
		}
	}
	return Rate{}, false
}

// Estimate returns what a call of duration d to e164 costs and the row
// used; false when no row covers e164.
func (t *Table) Estimate(e164 string, d time.Duration) (Amount, Rate, bool) {
	r, ok := t.Lookup(e164)
	if !ok {
		return 0, Rate{}, false
	}
	return r.Cost(d), r, true
}

// Error is a rate file error with its position.
type Error struct {
	File string
	Line int
	Msg  string
}

// Error renders "file:line: msg".
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Load reads and compiles the rate file at path.
func Load(path string) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading rates: %w", err)
	}
	return Parse(path, data)
}

// Parse compiles a rate file (named file in errors). The file is a mapping
// with currency (default for rows), source (where the rates come from),
// increment (default billing step in seconds, 1 if absent) and rates: a
// list of rows with prefix, per_minute, and optionally name, currency and
// increment. Errors are *Error naming file and line.
func Parse(file string, data []byte) (*Table, error) {
	fail := func(line int, format string, a ...any) error {
		return &Error{File: file, Line: line, Msg: fmt.Sprintf(format, a...)}
	}
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if n, tail, ok := strings.Cut(rest, ": "); ok {
				if l, err := strconv.Atoi(n); err == nil {
					line, msg = l, tail
				}
			}
		}
		return nil, fail(line, "%s", msg)
	}
	if len(root.Content) == 0 {
		return nil, fail(0, "empty rate file")
	}
	top := root.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, fail(top.Line, "want a mapping with currency, source and rates")
	}
	t := &Table{index: map[string]int32{}}
	defCurrency, defIncrement := "", 1
	var list *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		switch k.Value {
		case "currency":
			if !isCurrency(v.Value) {
				return nil, fail(v.Line, "currency %q: want an ISO 4217 code like USD", v.Value)
			}
			defCurrency = v.Value
		case "source":
			t.source = v.Value
		case "increment":
			n, err := increment(v)
			if err != nil {
				return nil, fail(v.Line, "increment: %v", err)
			}
			defIncrement = n
		case "rates":
			if v.Kind != yaml.SequenceNode {
				return nil, fail(v.Line, "rates: want a list of rows")
			}
			list = v
		default:
			return nil, fail(k.Line, "unknown key %q (want currency, source, increment, rates)", k.Value)
		}
	}
	if list == nil {
		return nil, fail(top.Line, "no rates")
	}
	seen := map[string]int{}
	for _, n := range list.Content {
		r, err := parseRow(n, defCurrency, defIncrement)
		if err != nil {
			return nil, fail(n.Line, "%v", err)
		}
		d := r.Prefix[1:]
		if prev, dup := seen[d]; dup {
			return nil, fail(n.Line, "prefix %s already listed on line %d", r.Prefix, prev)
		}
		seen[d] = r.Line
		t.index[d] = int32(len(t.rows))
		t.rows = append(t.rows, r)
		if !slices.Contains(t.lengths, len(d)) {
			t.lengths = append(t.lengths, len(d))
		}
	}
	slices.SortFunc(t.lengths, func(a, b int) int { return b - a })
	return t, nil
}

func parseRow(n *yaml.Node, defCurrency string, defIncrement int) (Rate, error) {
	r := Rate{Line: n.Line, Currency: defCurrency, Increment: defIncrement}
	if n.Kind != yaml.MappingNode {
		return r, errors.New("want a row with prefix and per_minute")
	}
	var havePrice bool
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "prefix":
			r.Prefix = v.Value
		case "name":
			r.Name = v.Value
		case "per_minute":
			a, err := ParseAmount(v.Value)
			if err != nil || v.Kind != yaml.ScalarNode {
				return r, fmt.Errorf("per_minute %q: want a non-negative decimal like 0.02 with at most 6 decimals", v.Value)
			}
			r.PerMinute, havePrice = a, true
		case "currency":
			if !isCurrency(v.Value) {
				return r, fmt.Errorf("currency %q: want an ISO 4217 code like USD", v.Value)
			}
			r.Currency = v.Value
		case "increment":
			inc, err := increment(v)
			if err != nil {
				return r, fmt.Errorf("increment: %w", err)
			}
			r.Increment = inc
		default:
			return r, fmt.Errorf("unknown key %q (want prefix, name, per_minute, currency, increment)", k.Value)
		}
	}
	if !isPrefix(r.Prefix) {
		return r, fmt.Errorf("prefix %q: want + and 1 to 15 digits, not starting with 0 (+44, +4479)", r.Prefix)
	}
	if !havePrice {
		return r, fmt.Errorf("prefix %s: per_minute is required", r.Prefix)
	}
	if r.Currency == "" {
		return r, fmt.Errorf("prefix %s: no currency (set currency at the top or on the row)", r.Prefix)
	}
	return r, nil
}

func increment(v *yaml.Node) (int, error) {
	n, err := strconv.Atoi(v.Value)
	if err != nil || n < 1 || n > 3600 {
		return 0, fmt.Errorf("%q: want whole seconds from 1 to 3600", v.Value)
	}
	return n, nil
}

func isCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func isPrefix(p string) bool {
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
