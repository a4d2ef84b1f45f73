package token

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkVerify: one INVITE's token check (three HMAC-SHA1 steps and the
// replay map). Each iteration advances the clock a step so every code is
// fresh.
func BenchmarkVerify(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	v := NewVerifier(Options{Now: func() time.Time { return now }})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		now = now.Add(Period)
		c, _ := Code(rfcSecret, now)
		if err := v.Verify("acct"+strconv.Itoa(i&1023), rfcSecret, c); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkVerifyWrong: the cost of a wrong code, what an attacker guessing
// codes pays per INVITE.
func BenchmarkVerifyWrong(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	v := NewVerifier(Options{Now: func() time.Time { return now }})
	b.ReportAllocs()
	for b.Loop() {
		_ = v.Verify("2001", rfcSecret, "000000")
	}
}
