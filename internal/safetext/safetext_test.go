package safetext

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// listed are the characters that must never reach a terminal or a
// spreadsheet raw.
func listed() []rune {
	var rs []rune
	for r := rune(0); r < 0x20; r++ { // C0, ESC among them
		rs = append(rs, r)
	}
	rs = append(rs, 0x7f)                // DEL
	for r := rune(0x80); r < 0xa0; r++ { // C1
		rs = append(rs, r)
	}
	for r := rune(0x202a); r <= 0x202e; r++ { // bidi embeddings and overrides
		rs = append(rs, r)
	}
	for r := rune(0x2066); r <= 0x2069; r++ { // bidi isolates
		rs = append(rs, r)
	}
	return append(rs, 0x200e, 0x200f, 0x061c, 0x2028, 0x2029, 0x200b, 0xfeff)
}

func TestEscapeEveryListedCharacter(t *testing.T) {
	for _, r := range listed() {
		in := "a" + string(r) + "b"
		got := Escape(in)
		if strings.ContainsRune(got, r) {
			t.Errorf("Escape(%U) kept it raw: %q", r, got)
		}
		var want string
		switch r {
		case '\a':
			want = `a\ab`
		case '\b':
			want = `a\bb`
		case '\f':
			want = `a\fb`
		case '\n':
			want = `a\nb`
		case '\r':
			want = `a\rb`
		case '\t':
			want = `a\tb`
		case '\v':
			want = `a\vb`
		default:
			if r < 0x80 {
				want = fmt.Sprintf(`a\x%02xb`, r)
			} else {
				want = fmt.Sprintf(`a\u%04xb`, r)
			}
		}
		if got != want {
			t.Errorf("Escape(%U) = %q, want %q", r, got, want)
		}
	}
}

func TestEscape(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"plain", "friendly-scanner/1.0", "friendly-scanner/1.0"},
		{"other scripts kept", "张三 Ünïcode", "张三 Ünïcode"},
		{"terminal escape", "\x1b[2J\x1b]0;pwned\x07", `\x1b[2J\x1b]0;pwned\a`},
		{"8-bit CSI", "a\u009b31mb", `a\u009b31mb`},
		{"bidi override hides an extension", "1001\u202egpj.exe", `1001\u202egpj.exe`},
		{"invalid UTF-8", "a\xff\xfeb", `a\xff\xfeb`},
		{"backslash doubled so escapes are unambiguous", `a\u202eb`, `a\\u202eb`},
		{"NUL", "a\x00b", `a\x00b`},
		{"empty", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Escape(c.in)
			if got != c.want {
				t.Fatalf("Escape(%q) = %q, want %q", c.in, got, c.want)
			}
			if !utf8.ValidString(got) || strings.IndexFunc(got, Unsafe) >= 0 {
				t.Errorf("Escape(%q) = %q is not printable", c.in, got)
			}
		})
	}
}

func TestCSVCell(t *testing.T) {
	cases := []struct{ in, want string }{
		{"=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"},
		{"+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1:A9)", "'@SUM(A1:A9)"},
		{"\t=1+1", `'\t=1+1`},
		{"\r=1+1", `'\r=1+1`},
		{"=\x1b[31m", `'=\x1b[31m`},
		{"1001", "1001"},
		{"203.0.113.7:5060", "203.0.113.7:5060"},
		{"a=b", "a=b"},
		{"\u202e=1+1", `\u202e=1+1`},
		{"", ""},
	}
	for _, c := range cases {
		if got := CSVCell(c.in); got != c.want {
			t.Errorf("CSVCell(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "a\x1bb", "\u202e", "\xff", `\`, "张三"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Escape(s)
		if !utf8.ValidString(got) || strings.IndexFunc(got, Unsafe) >= 0 {
			t.Fatalf("Escape(%q) = %q is not printable", s, got)
		}
		if !needsEscape(s) && got != s {
			t.Fatalf("Escape changed safe text %q to %q", s, got)
		}
	})
}

func TestJSONEscapesWhatEncodingJSONLeavesRaw(t *testing.T) {
	in := map[string]string{"s": "a" + string(listed()) + "\U000e0001\U0001d173 张三 \"q\" \\ <>&"}
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got := JSON(b)
	for i, r := range string(got) {
		if r != '\n' && Unsafe(r) {
			t.Fatalf("raw %U at byte %d: %s", r, i, got)
		}
	}
	for _, want := range []string{`\u202e`, `\u0085`, `\u007f`, `\udb40\udc01`, "张三"} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("JSON lacks %s: %s", want, got)
		}
	}
	var back map[string]string
	if err := json.Unmarshal(got, &back); err != nil || back["s"] != in["s"] {
		t.Fatalf("JSON does not decode to the same text: %v %q", err, back["s"])
	}
	plain := []byte(`{"a": "b"}`)
	if got := JSON(plain); &got[0] != &plain[0] {
		t.Error("JSON copied ASCII-only input")
	}
}

func FuzzJSON(f *testing.F) {
	for _, s := range []string{"", "a\x1bb", "\u202e", "\u0085", "\U000e0001", "\xff", `\`, "张三"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := json.Marshal([]string{s})
		if err != nil {
			t.Skip()
		}
		got := JSON(b)
		for _, r := range string(got) {
			if Unsafe(r) {
				t.Fatalf("raw %U in %q", r, got)
			}
		}
		var want, back []string
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got, &back); err != nil || back[0] != want[0] {
			t.Fatalf("JSON(%q) = %q decodes to %q, %v", b, got, back, err)
		}
	})
}
