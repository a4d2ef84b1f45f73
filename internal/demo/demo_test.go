package demo

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/tollguard/tollguard/internal/cli"
)

// TestDemo runs the README's first command as a newcomer would and checks
// what it prints: phones work before and during the attacks, the PBX-side
// call reaches a phone, the typo is not banned, every attacker is stopped
// (dropped, or held by greylisting) and the PBX answers none of them.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo scenario")
	}
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), []string{"demo"}, &out, &errb, Commands()...)
	text := out.String()
	t.Log(text)
	if code != 0 {
		t.Fatalf("demo exited %d: %s", code, errb.String())
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`phone 1001 .*registered 1/1 .*calls answered 1/1`),
		regexp.MustCompile(`phone 1002 .*registered 1/1 .*calls answered 1/1`),
		regexp.MustCompile(`phone 1003 .*registered 1/1 .*calls answered 1/1`),
		regexp.MustCompile(`1002 answered and the call ended normally`),
		regexp.MustCompile(`scanner +from 127\.0\.0\.66 .*silenced after 0 requests`),
		// Greylisting (the default) holds every request of the cracker and
		// the sweeper: they never retransmit, get nothing and give up.
		regexp.MustCompile(`cracker +from 127\.0\.0\.67 .*answers map\[\]`),
		regexp.MustCompile(`(?m)^ +greylist +([1-9]\d*) requests held, [1-9]\d* retransmissions of phones let through$`),
		regexp.MustCompile(`(?m)^ +scanner +[1-9]\d* requests dropped$`),
		regexp.MustCompile(`(?m)^ +honeypot +[1-9]\d* requests dropped$`),
		regexp.MustCompile(`cracker +from 127\.0\.0\.69 .*answers map\[\]`),
		regexp.MustCompile(`enumerator +from 127\.0\.0\.68 .*silenced after \d+ requests`),
		regexp.MustCompile(`enumerator +from 127\.0\.0\.68 .*answers map\[\]`),
		regexp.MustCompile(`(?m)^ +1001: call answered$`),
		regexp.MustCompile(`(?m)^ +1003: call answered$`),
	} {
		if !want.MatchString(text) {
			t.Errorf("demo output lacks %v", want)
		}
	}
	for _, forged := range []string{"127.0.0.66 ", "127.0.0.69 "} {
		if strings.Contains(text[strings.Index(text, "bans in force"):], forged) {
			t.Errorf("a UDP source banned on one packet's evidence (%s)", forged)
		}
	}
	if strings.Contains(text, "127.0.0.14") && strings.Contains(text, "1003@127.0.0.14") {
		t.Error("the typo phone was banned")
	}
}
