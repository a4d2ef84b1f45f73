package freeswitch

import (
	"errors"
	"fmt"
	"github.com/tollguard/tollguard/internal/freeswitch/esltest"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		ct      string
		body    string
		wantErr error
	}{
		{name: "auth request", in: "Content-Type: auth/request\n\n", ct: "auth/request"},
		{name: "length before type", in: "Content-Length: 3\nContent-Type: api/response\n\n+OK", ct: "api/response", body: "+OK"},
		{name: "type before length", in: "Content-Type: api/response\nContent-Length: 3\n\n+OK", ct: "api/response", body: "+OK"},
		{name: "crlf", in: "Content-Type: command/reply\r\nReply-Text: +OK accepted\r\n\r\n", ct: "command/reply"},
		{name: "leading blank lines", in: "\n\nContent-Type: auth/request\n\n", ct: "auth/request"},
		{name: "lower-case names", in: "content-length: 2\ncontent-type: api/response\n\nok", ct: "api/response", body: "ok"},
		{name: "body with nul", in: "Content-Length: 3\nContent-Type: api/response\n\na\x00b", ct: "api/response", body: "a\x00b"},
		{name: "header without colon", in: "Content-Type auth/request\n\n", wantErr: ErrFrame},
		{name: "header without name", in: ": x\n\n", wantErr: ErrFrame},
		{name: "negative length", in: "Content-Length: -1\n\n", wantErr: ErrFrame},
		{name: "garbage length", in: "Content-Length: 12x\n\n", wantErr: ErrFrame},
		{name: "huge length", in: "Content-Length: 99999999999\n\n", wantErr: ErrFrame},
		{name: "length over limit", in: fmt.Sprintf("Content-Length: %d\n\n", MaxContentLength+1), wantErr: ErrFrame},
		{name: "body cut", in: "Content-Length: 10\n\nabc", wantErr: io.ErrUnexpectedEOF},
		{name: "headers cut", in: "Content-Type: auth/req", wantErr: io.ErrUnexpectedEOF},
		{name: "headers without end", in: "Content-Type: auth/request\n", wantErr: io.ErrUnexpectedEOF},
		{name: "empty stream", in: "", wantErr: io.EOF},
		{name: "too many headers", in: strings.Repeat("X: y\n", MaxHeaders+1) + "\n", wantErr: ErrFrame},
		{name: "line too long", in: "X: " + strings.Repeat("a", MaxHeaderLine+10) + "\n\n", wantErr: ErrFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewReader(strings.NewReader(tt.in)).ReadFrame()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.ContentType() != tt.ct || string(f.Body) != tt.body {
				t.Errorf("got %q %q, want %q %q", f.ContentType(), f.Body, tt.ct, tt.body)
			}
		})
	}
}

// Frames follow one another on one stream with nothing between them.
func TestReadFrameSequence(t *testing.T) {
	in := "Content-Type: auth/request\n\n" +
		"Content-Type: command/reply\nReply-Text: +OK accepted\n\n" +
		esltest.FrameEvent(esltest.RegisterOK("1001", "192.0.2.1", "5060", "x")) +
		esltest.DisconnectNotice
	rd := NewReader(strings.NewReader(in))
	var got []string
	for {
		f, err := rd.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.ContentType())
	}
	want := "auth/request command/reply text/event-plain text/disconnect-notice"
	if strings.Join(got, " ") != want {
		t.Errorf("got %q", got)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                     "plain",
		"sofia%3A%3Aregister":       "sofia::register",
		"a+b":                       "a+b",
		"100%":                      "100%",
		"%zz%4":                     "%zz%4",
		"%E4%B8%AD":                 "中",
		"2014-04-25%2018%3A08%3A46": "2014-04-25 18:08:46",
		"%00":                       "\x00",
		"%%41":                      "%A",
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParsePlain(t *testing.T) {
	payload := esltest.PlainEvent([]esltest.Hdr{
		{K: "Event-Name", V: "CUSTOM"}, {K: "Event-Subclass", V: "sofia::register_failure"},
		{K: "user-agent", V: "Evil\n\nContent-Length: 5\n\nx: y"}, {K: "profile-name", V: "internal"},
		{K: "profile-name", V: "second"}, {K: "Job-Owner-UUID", V: ""},
		{K: "variable_array", V: "ARRAY::first|:sec%ond|:th:ird"},
	}, "body\nwith lines")
	ev, err := ParsePlain([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Subclass() != "sofia::register_failure" || ev.Get("profile-name") != "internal" {
		t.Errorf("headers = %v", ev.Headers)
	}
	if ev.Get("user-agent") != "Evil\n\nContent-Length: 5\n\nx: y" {
		t.Errorf("user-agent = %q", ev.Get("user-agent"))
	}
	if _, ok := ev.Headers["x"]; ok {
		t.Error("an encoded value injected a header")
	}
	if ev.Get("Job-Owner-UUID") != "" || ev.Get("event-name") != "CUSTOM" {
		t.Errorf("_undef_ or case-insensitive lookup wrong: %v", ev.Headers)
	}
	if got := ev.Array("variable_array"); len(got) != 3 || got[1] != "sec%ond" || got[2] != "th:ird" {
		t.Errorf("array = %q", got)
	}
	if ev.Body != "body\nwith lines" {
		t.Errorf("body = %q", ev.Body)
	}
	for _, bad := range []string{"no colon\n\n", "Event-Name: X\nContent-Length: 50\n\nshort", "Other: x\n\n", "Event-Name: X\nContent-Length: -2\n\n"} {
		if _, err := ParsePlain([]byte(bad)); !errors.Is(err, ErrFrame) {
			t.Errorf("ParsePlain(%q) = %v, want ErrFrame", bad, err)
		}
	}
}

func mapOne(t *testing.T, m *Mapper, payload string) (event.Event, string) {
	t.Helper()
	ev, err := ParsePlain([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return m.Map(ev)
}

func TestMapperEdges(t *testing.T) {
	m := NewMapper()
	// An INVITE failure with no attempt before it has no account: its
	// to-user is the dialled number.
	ev, _ := mapOne(t, m, esltest.RegisterFailure("0046701234567", "198.51.100.7", "5060", "x", "INVITE"))
	if af := ev.(*event.AuthFailure); af.Account != "" || af.RURIUser != "0046701234567" {
		t.Errorf("INVITE failure without attempt = %+v", af)
	}
	// An attempt from another port is not taken.
	mapOne(t, m, esltest.RegisterAttempt("1", "1001", "198.51.100.7", "5061", "x", "FORBIDDEN"))
	ev, _ = mapOne(t, m, esltest.RegisterFailure("0046701234567", "198.51.100.7", "5060", "x", "INVITE"))
	if af := ev.(*event.AuthFailure); af.Account != "" {
		t.Errorf("attempt from another port used: %+v", af)
	}
	// A stale attempt is not taken.
	now := time.Now()
	m.Now = func() time.Time { return now }
	mapOne(t, m, esltest.RegisterAttempt("1", "1001", "198.51.100.7", "5060", "x", "FORBIDDEN"))
	now = now.Add(attemptMaxAge + time.Second)
	ev, _ = mapOne(t, m, esltest.RegisterFailure("0046701234567", "198.51.100.7", "5060", "x", "INVITE"))
	if af := ev.(*event.AuthFailure); af.Account != "" {
		t.Errorf("stale attempt used: %+v", af)
	}
	// Bounded memory under a flood of attempts from distinct ports.
	for i := range 3 * attemptMemory {
		mapOne(t, m, esltest.RegisterAttempt("1", "1001", "198.51.100.7", fmt.Sprint(i), "x", "FORBIDDEN"))
	}
	if len(m.attempts) > attemptMemory || len(m.order) > attemptMemory {
		t.Errorf("attempt memory %d/%d over %d", len(m.attempts), len(m.order), attemptMemory)
	}
	for _, tc := range []struct {
		name, payload, why string
	}{
		{"bad ip", esltest.RegisterFailure("1", "not-an-ip", "5060", "x", "REGISTER"), DropNoSource},
		{"outbound leg", esltest.ChannelEventFrom("CHANNEL_CREATE", "u", "203.0.113.1", "1", "2", "outbound", "x"), DropOutbound},
		{"other event", esltest.PlainEvent(esltest.StdHeaders("HEARTBEAT", "", "switch_core.c", "send_heartbeat"), ""), DropIgnored},
		{"other custom", esltest.PlainEvent(esltest.StdHeaders("CUSTOM", "sofia::expire", "sofia_reg.c", "x"), ""), DropIgnored},
	} {
		if ev, why := mapOne(t, m, tc.payload); ev != nil || why != tc.why {
			t.Errorf("%s: got %v %q, want nil %q", tc.name, ev, why, tc.why)
		}
	}
	// IPv4-mapped addresses are normalised.
	ev, _ = mapOne(t, m, esltest.RegisterFailure("1", "::ffff:198.51.100.7", "5060", "x", "REGISTER"))
	if a := ev.Base().Source.Addr(); !a.Is4() {
		t.Errorf("source %v not unmapped", a)
	}
}
