package token

import (
	"errors"
	"testing"
	"time"
)

// FuzzVerify feeds header values from INVITEs to Verify: no panic, and the
// only value accepted is the code for the current step (skew off).
func FuzzVerify(f *testing.F) {
	for _, s := range []string{"287082", " 287082 ", "", "12345", "1234567", "abcdef", "\x00\x00\x00\x00\x00\x00", "２８７０８２"} {
		f.Add(s)
	}
	now := time.Unix(59, 0)
	want, err := Code(rfcSecret, now)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string) {
		v := NewVerifier(Options{Now: func() time.Time { return now }, Skew: -1})
		err := v.Verify("2001", rfcSecret, header)
		if err == nil && header != want && !trimmedEqual(header, want) {
			t.Fatalf("accepted %q, the code is %q", header, want)
		}
		if err == nil {
			if err := v.Verify("2001", rfcSecret, header); !errors.Is(err, ErrReplayed) {
				t.Fatalf("replay of %q: %v", header, err)
			}
		}
	})
}

func trimmedEqual(header, want string) bool {
	i, j := 0, len(header)
	for i < j && (header[i] == ' ' || header[i] == '\t' || header[i] == '\n' || header[i] == '\r' || header[i] == '\v' || header[i] == '\f') {
		i++
	}
	for j > i && (header[j-1] == ' ' || header[j-1] == '\t' || header[j-1] == '\n' || header[j-1] == '\r' || header[j-1] == '\v' || header[j-1] == '\f') {
		j--
	}
	return header[i:j] == want
}
