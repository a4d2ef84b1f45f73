package freeswitch

import (
	"context"
	"errors"
	"github.com/tollguard/tollguard/internal/freeswitch/esltest"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/source"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDialAuth(t *testing.T) {
	ctx := testCtx(t)
	srv := esltest.New(t, "ClueCon")
	c, err := Dial(ctx, srv.Addr(), "ClueCon", DialOptions{})
	if err != nil {
		t.Fatalf("Dial with the right password: %v", err)
	}
	c.Close()
	if _, err := Dial(ctx, srv.Addr(), "wrong", DialOptions{}); !errors.Is(err, ErrAuth) {
		t.Errorf("Dial with a wrong password = %v, want ErrAuth", err)
	}
	if _, err := Dial(ctx, srv.Addr(), "Clue\n\napi hupall", DialOptions{}); err == nil {
		t.Error("a password with a line break was sent")
	}
	if got := srv.Commands(); len(got) != 2 || got[0] != "auth ClueCon" || got[1] != "auth wrong" {
		t.Errorf("server saw %q", got)
	}
}

func TestDialRejected(t *testing.T) {
	srv := esltest.New(t, "ClueCon", func(s *esltest.Server) { s.Reject = true })
	if _, err := Dial(testCtx(t), srv.Addr(), "ClueCon", DialOptions{}); !errors.Is(err, ErrRejected) {
		t.Errorf("Dial = %v, want ErrRejected", err)
	}
}

// A server that accepts and never speaks must not hang the client.
func TestDialSilentServer(t *testing.T) {
	srv := esltest.New(t, "ClueCon", func(s *esltest.Server) { s.Silent = true })
	_, err := Dial(testCtx(t), srv.Addr(), "ClueCon", DialOptions{Timeout: 200 * time.Millisecond})
	if err == nil {
		t.Fatal("Dial to a silent server succeeded")
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := Dial(ctx, srv.Addr(), "ClueCon", DialOptions{Timeout: time.Hour}); err == nil {
		t.Fatal("Dial ignored its context")
	}
}

func dialTest(t *testing.T, srv *esltest.Server) (*Conn, *esltest.Conn) {
	t.Helper()
	c, err := Dial(testCtx(t), srv.Addr(), "ClueCon", DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, <-srv.Accepted
}

func TestAPIReplies(t *testing.T) {
	ctx := testCtx(t)
	srv := esltest.New(t, "ClueCon")
	srv.AddChannel("37e9b766-5256-4e4b-b1ed-3767b930fec8")
	c, _ := dialTest(t, srv)
	if err := c.Subscribe(ctx, Subscription); err != nil {
		t.Fatal(err)
	}
	if r, err := c.API(ctx, "uuid_kill 37e9b766-5256-4e4b-b1ed-3767b930fec8"); err != nil || r != "+OK\n" {
		t.Errorf("uuid_kill = %q, %v", r, err)
	}
	_, err := c.API(ctx, "uuid_kill 37e9b766-5256-4e4b-b1ed-3767b930fec8")
	var ce *CommandError
	if !errors.As(err, &ce) || !strings.Contains(ce.Reply, "No such channel") {
		t.Errorf("second uuid_kill = %v, want -ERR No such channel!", err)
	}
	if _, err := c.API(ctx, "nosuch"); !errors.As(err, &ce) || !strings.Contains(ce.Reply, "Command not found") {
		t.Errorf("unknown api = %v", err)
	}
	r, err := c.BgAPI(ctx, "status")
	if err != nil || !strings.HasPrefix(r, "UP ") {
		t.Errorf("bgapi status = %q, %v", r, err)
	}
	// The event the server sent between the bgapi reply and the job is
	// delivered as an event, not taken for the result.
	select {
	case ev := <-c.Events():
		if ev.Name() != "CHANNEL_ANSWER" {
			t.Errorf("event = %s", ev.Name())
		}
	case <-time.After(5 * time.Second):
		t.Error("interleaved event not delivered")
	}
	cmds := srv.Commands()
	if got := cmds[len(cmds)-1]; got != "bgapi status" {
		t.Errorf("last command = %q", got)
	}
}

// Replies are matched to commands in order even when many are in flight.
func TestConcurrentCommands(t *testing.T) {
	ctx := testCtx(t)
	srv := esltest.New(t, "ClueCon")
	c, _ := dialTest(t, srv)
	errs := make(chan error, 40)
	for i := range 40 {
		go func() {
			if i%2 == 0 {
				r, err := c.API(ctx, "status")
				if err == nil && !strings.HasPrefix(r, "UP") {
					err = errors.New("status got " + r)
				}
				errs <- err
				return
			}
			r, err := c.API(ctx, "hupall NORMAL_CLEARING sip_network_ip 198.51.100.7")
			if err == nil && !strings.HasPrefix(r, "+OK hangup all channels matching [sip_network_ip]=[198.51.100.7]") {
				err = errors.New("hupall got " + r)
			}
			errs <- err
		}()
	}
	for range 40 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestDisconnectNotice(t *testing.T) {
	srv := esltest.New(t, "ClueCon")
	c, sc := dialTest(t, srv)
	sc.Write(esltest.FrameEvent(esltest.RegisterOK("1001", "198.51.100.7", "5060", "Yealink SIP-T46S")))
	sc.Write(esltest.DisconnectNotice)
	ev := <-c.Events()
	if ev.Subclass() != "sofia::register" {
		t.Errorf("event = %s", ev.Subclass())
	}
	<-c.Done()
	if !errors.Is(c.Err(), ErrDisconnected) {
		t.Errorf("Err = %v, want ErrDisconnected", c.Err())
	}
	if _, err := c.API(testCtx(t), "status"); err == nil {
		t.Error("api on a closed connection succeeded")
	}
}

func TestDroppedMidEvent(t *testing.T) {
	srv := esltest.New(t, "ClueCon")
	c, sc := dialTest(t, srv)
	whole := esltest.FrameEvent(esltest.RegisterFailure("1001", "198.51.100.7", "5060", "friendly-scanner", "REGISTER"))
	sc.Write(whole + whole[:len(whole)/2])
	sc.Close()
	if ev := <-c.Events(); ev.Subclass() != "sofia::register_failure" {
		t.Errorf("event = %s", ev.Subclass())
	}
	<-c.Done()
	if !errors.Is(c.Err(), io.ErrUnexpectedEOF) {
		t.Errorf("Err = %v, want io.ErrUnexpectedEOF", c.Err())
	}
	select {
	case ev := <-c.Events():
		t.Errorf("half an event was delivered: %v", ev.Headers)
	default:
	}
}

func newTestSource(t *testing.T, srv *esltest.Server, reg prometheus.Registerer) *Source {
	t.Helper()
	s, err := New(Config{Addr: srv.Addr(), Password: "ClueCon", Registry: reg,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func recv(t *testing.T, out <-chan event.Event) event.Event {
	t.Helper()
	select {
	case ev := <-out:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
		return nil
	}
}

// The subscription is the list, CUSTOM and its subclasses last.
func TestStreamSubscribes(t *testing.T) {
	srv := esltest.New(t, "ClueCon")
	s := newTestSource(t, srv, nil)
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- s.Stream(ctx, make(chan event.Event, 1)) }()
	<-srv.Subscribed
	for s.current() == nil {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Stream = %v", err)
	}
	cmds := srv.Commands()
	want := "event plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB CUSTOM " +
		"sofia::register_failure sofia::register_attempt sofia::register sofia::wrong_call_state"
	if len(cmds) != 2 || cmds[1] != want {
		t.Errorf("commands = %q", cmds)
	}
}

// One stream carries every event kind, mapped, in FreeSWITCH's order.
func TestStreamMapsInOrder(t *testing.T) {
	srv := esltest.New(t, "ClueCon")
	s := newTestSource(t, srv, nil)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	out := make(chan event.Event, 32)
	go s.Stream(ctx, out)
	sc := <-srv.Subscribed
	uuid := "37e9b766-5256-4e4b-b1ed-3767b930fec8"
	for _, e := range []string{
		esltest.RegisterAttempt("0046701234567", "1001", "198.51.100.7", "5071", "friendly-scanner", "FORBIDDEN"),
		esltest.RegisterFailure("0046701234567", "198.51.100.7", "5071", "friendly-scanner", "INVITE"),
		esltest.RegisterFailure("1002", "198.51.100.8", "5060", "sipcli/v1.8", "REGISTER"),
		esltest.RegisterOK("1003", "192.0.2.20", "5060", "Yealink SIP-T46S 66.86.0.15"),
		esltest.WrongCallState("1004", "198.51.100.9", "5062"),
		esltest.ChannelEvent("CHANNEL_CREATE", uuid),
		esltest.ChannelEvent("CHANNEL_ANSWER", uuid),
		esltest.ChannelEvent("CHANNEL_HANGUP_COMPLETE", uuid),
	} {
		sc.Write(esltest.FrameEvent(e))
	}
	inv := recv(t, out).(*event.AuthFailure)
	if inv.Account != "1001" || inv.Method != "INVITE" || inv.ToUser != "0046701234567" || inv.Code != 403 ||
		inv.Source != netip.MustParseAddrPort("198.51.100.7:5071") || inv.UserAgent != "friendly-scanner" || inv.Listener != "esl" {
		t.Errorf("INVITE failure = %+v", inv)
	}
	if want := time.UnixMicro(1787393701123456); !inv.Time.Equal(want) {
		t.Errorf("time = %v, want %v", inv.Time, want)
	}
	reg := recv(t, out).(*event.AuthFailure)
	if reg.Account != "1002" || reg.Method != "REGISTER" || reg.AuthUser != "" || reg.UserAgent != "sipcli/v1.8" {
		t.Errorf("REGISTER failure = %+v", reg)
	}
	ok := recv(t, out).(*event.Register)
	if ok.Account != "1003" || ok.Expires != 600 || ok.Source.Addr() != netip.MustParseAddr("192.0.2.20") ||
		ok.UserAgent != "Yealink SIP-T46S 66.86.0.15" {
		t.Errorf("register = %+v", ok)
	}
	ab := recv(t, out).(*event.Response)
	if ab.Code != 407 || ab.Method != "INVITE" || ab.FromUser != "1004" || ab.HasCredentials ||
		ab.Source != netip.MustParseAddrPort("198.51.100.9:5062") {
		t.Errorf("abandoned challenge = %+v", ab)
	}
	ca := recv(t, out).(*event.CallAttempt)
	if ca.CallID != uuid || ca.Account != "1003" || ca.Destination != "0046701234567" || ca.Transport != "udp" ||
		ca.Source != netip.MustParseAddrPort("198.51.100.7:5071") || ca.UserAgent != "Jitsi 2.5.5065 Linux" {
		t.Errorf("call attempt = %+v", ca)
	}
	if an := recv(t, out).(*event.CallAnswered); an.CallID != uuid || an.Destination != "0046701234567" {
		t.Errorf("answered = %+v", an)
	}
	end := recv(t, out).(*event.CallEnded)
	if end.Duration != 18*time.Second || end.Billsec != 5*time.Second || end.Cause != "bye" || end.CallID != uuid {
		t.Errorf("ended = %+v", end)
	}
}

// The supervisor reconnects after a drop; events stay in order across it
// and the connected-time metric accumulates.
func TestStreamReconnects(t *testing.T) {
	srv := esltest.New(t, "ClueCon")
	reg := prometheus.NewRegistry()
	s := newTestSource(t, srv, reg)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	out := make(chan event.Event, 32)
	sv := &source.Supervisor{Name: "esl", Min: 10 * time.Millisecond, Max: 20 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}
	stopped := make(chan error, 1)
	go func() { stopped <- sv.Run(ctx, s, out) }()

	sc := <-srv.Subscribed
	sc.Write(esltest.FrameEvent(esltest.RegisterFailure("1001", "198.51.100.7", "5060", "a", "REGISTER")))
	sc.Write(esltest.FrameEvent(esltest.RegisterFailure("1002", "198.51.100.7", "5060", "a", "REGISTER")))
	sc.Close()
	sc = <-srv.Subscribed
	sc.Write(esltest.FrameEvent(esltest.RegisterFailure("1003", "198.51.100.7", "5060", "a", "REGISTER")))
	for _, want := range []string{"1001", "1002", "1003"} {
		if got := recv(t, out).(*event.AuthFailure).Account; got != want {
			t.Fatalf("account = %s, want %s", got, want)
		}
	}
	if n := testutil.ToFloat64(s.m.connects); n != 2 {
		t.Errorf("connects = %v, want 2", n)
	}
	if secs := testutil.ToFloat64(s.m.seconds); secs <= 0 {
		t.Errorf("connected seconds = %v", secs)
	}
	if up := testutil.ToFloat64(s.m.connected); up != 1 {
		t.Errorf("connected = %v", up)
	}
	cancel()
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
}

func TestTeardown(t *testing.T) {
	ctx := testCtx(t)
	srv := esltest.New(t, "ClueCon")
	s := newTestSource(t, srv, nil)
	if err := s.KillCall(ctx, "37e9b766-5256-4e4b-b1ed-3767b930fec8"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("KillCall while down = %v", err)
	}
	srv.AddChannel("37e9b766-5256-4e4b-b1ed-3767b930fec8")
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.Stream(sctx, make(chan event.Event, 1))
	<-srv.Subscribed
	for s.current() == nil {
		time.Sleep(time.Millisecond)
	}
	if err := s.KillCall(ctx, "37e9b766-5256-4e4b-b1ed-3767b930fec8"); err != nil {
		t.Errorf("KillCall = %v", err)
	}
	if err := s.KillCall(ctx, "37e9b766-5256-4e4b-b1ed-3767b930fec8"); err == nil {
		t.Error("KillCall of a gone channel succeeded")
	}
	for _, bad := range []string{"", "x y", "abc\n\napi hupall", strings.Repeat("a", 65)} {
		if err := s.KillCall(ctx, bad); err == nil {
			t.Errorf("KillCall(%q) accepted", bad)
		}
	}
	if err := s.KillSource(ctx, netip.MustParseAddr("::ffff:198.51.100.7")); err != nil {
		t.Errorf("KillSource = %v", err)
	}
	if err := s.KillSource(ctx, netip.Addr{}); err == nil {
		t.Error("KillSource of the zero address was sent (it would hang up every call)")
	}
	cmds := srv.Commands()
	want := []string{"api uuid_kill 37e9b766-5256-4e4b-b1ed-3767b930fec8", "api uuid_kill 37e9b766-5256-4e4b-b1ed-3767b930fec8",
		"api hupall NORMAL_CLEARING sip_network_ip 198.51.100.7"}
	if got := cmds[2:]; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("commands = %q, want %q", got, want)
	}
}

// A command the server never answers ends with the caller's deadline, not
// a hang.
func TestAPINeverAnswered(t *testing.T) {
	srv := esltest.New(t, "ClueCon")
	s, err := New(Config{Addr: srv.Addr(), Password: "ClueCon", Timeout: 200 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	go s.Stream(ctx, make(chan event.Event, 1))
	<-srv.Subscribed
	for s.current() == nil {
		time.Sleep(time.Millisecond)
	}
	if _, err := s.API(ctx, "hang"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("API = %v, want context.DeadlineExceeded", err)
	}
}
