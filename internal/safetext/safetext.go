// Package safetext makes attacker-supplied text (User-Agents, accounts,
// Call-IDs, reasons) safe to print to a terminal or to open in a
// spreadsheet: control and bidi characters are escaped, never passed raw,
// and CSV cells a spreadsheet would run as a formula are defused.
//
// JSON output stays faithful; but encoding/json leaves DEL, C1 and bidi
// controls raw inside strings, so JSON rewrites those as \u escapes, which
// decode to the same text.
package safetext

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Unsafe reports whether r must not reach a terminal or a spreadsheet raw:
// every rune unicode.IsPrint refuses, which covers the C0 controls (tab,
// CR and LF included), DEL, the C1 controls (ESC's 8-bit form CSI among
// them), the bidi embeddings, overrides and isolates (U+202A–U+202E,
// U+2066–U+2069), the marks U+200E, U+200F and U+061C, the line and
// paragraph separators, zero-width and other format characters, and
// spaces other than U+0020.
func Unsafe(r rune) bool {
	return !unicode.IsPrint(r)
}

// Escape returns s with every unsafe rune written as its Go escape (\t,
// \x1b, \u202e), every byte that is not UTF-8 as \xNN, and backslashes
// doubled, so the result is printable and says unambiguously what was
// there. Printable text, other scripts included, is kept as it is.
func Escape(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])>>4, 16))
			b.WriteString(strconv.FormatUint(uint64(s[i])&15, 16))
		case r == '\\':
			b.WriteString(`\\`)
		case Unsafe(r):
			q := strconv.QuoteRuneToASCII(r) // '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func needsEscape(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || r == '\\' || Unsafe(r) {
			return true
		}
	}
	return false
}

// CSVCell returns s escaped (Escape) and, when a spreadsheet would read
// the cell as a formula — it starts with '=', '+', '-', '@', a tab or a
// CR (OWASP's CSV injection list) —, prefixed with a single quote, which
// spreadsheets show as text.
func CSVCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + Escape(s)
	}
	return Escape(s)
}

// JSON rewrites encoded JSON so it prints safely: every unsafe rune that
// encoding/json leaves raw inside a string (DEL, C1, bidi controls, other
// format characters) becomes a \uXXXX escape, a surrogate pair beyond the
// BMP. The JSON still decodes to exactly the same values; newlines between
// tokens (indentation) are kept.
func JSON(b []byte) []byte {
	i := 0
	for i < len(b) && b[i] < utf8.RuneSelf && b[i] != 0x7f {
		i++
	}
	if i == len(b) {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	out = append(out, b[:i]...)
	for i < len(b) {
		if c := b[i]; c < utf8.RuneSelf && c != 0x7f {
			// Inside strings encoding/json has escaped C0 already; between
			// tokens there is only structure and indentation.
			j := i + 1
			for j < len(b) && b[j] < utf8.RuneSelf && b[j] != 0x7f {
				j++
			}
			out = append(out, b[i:j]...)
			i = j
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == '\n' || !Unsafe(r) || r == utf8.RuneError && n == 1 {
			out = append(out, b[i:i+n]...)
			i += n
			continue
		}
		if r > 0xffff {
			r1, r2 := utf16.EncodeRune(r)
			out = appendU(appendU(out, r1), r2)
		} else {
			out = appendU(out, r)
		}
		i += n
	}
	return out
}

func appendU(b []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', hex[r>>12&15], hex[r>>8&15], hex[r>>4&15], hex[r&15])
}
