package alert

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Whatever an attacker puts in a User-Agent or account, the cleaned text
// is valid UTF-8, short, on one line and free of markup characters.
func FuzzClean(f *testing.F) {
	for _, s := range []string{"friendly-scanner", "[a](http://x)", "@all\n# x", "<@u>", "\xff\xfe", "13812345678", "a\u202eb", strings.Repeat("*", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := clean(s)
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > maxField+1 {
			t.Fatalf("clean(%q) = %q: invalid or too long", s, got)
		}
		if strings.ContainsAny(got, "[]()<>@#*_`~!|/\\\n\r\t") {
			t.Fatalf("clean(%q) = %q keeps markup", s, got)
		}
	})
}

// Any answer from a robot API is an error or success, never a panic.
func FuzzRobotReply(f *testing.F) {
	for _, s := range []string{`{"errcode":0,"errmsg":"ok"}`, `{"errcode":130101}`, `{}`, `null`, `[`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := checkRobotReply(b, dingTalkTooFast); err == nil && !strings.Contains(string(b), "errcode") {
			t.Fatalf("accepted %q", b)
		}
	})
}
