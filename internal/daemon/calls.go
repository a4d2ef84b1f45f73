package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/freeswitch"
	"github.com/tollguard/tollguard/internal/teardown"
)

// maxSidecarCalls bounds the calls tracked from Event Socket events: a
// hang-up missed while the connection was down must not grow the table
// without end. Calls past it are not listed (but still judged).
const maxSidecarCalls = 65536

// sidecarCalls is the calls API (`tollguard calls`, `tollguard hangup`) in
// sidecar mode: the running calls as FreeSWITCH's channel events told
// them, ended through the Event Socket (uuid_kill). It implements
// api.CallService as the inline proxy does.
type sidecarCalls struct {
	esl    teardown.Teardown
	log    *slog.Logger
	maxAge time.Duration // sip.dialog_timeout: a call older is forgotten

	mu    sync.Mutex
	calls map[string]*teardown.Call
}

var _ api.CallService = (*sidecarCalls)(nil)

func newSidecarCalls(esl teardown.Teardown, log *slog.Logger, maxAge time.Duration) *sidecarCalls {
	return &sidecarCalls{esl: esl, log: log.With("component", "sidecar"), maxAge: maxAge, calls: map[string]*teardown.Call{}}
}

// observe follows one event: a call attempt adds the call, an answer marks
// it, an end removes it.
func (c *sidecarCalls) observe(ev event.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e := ev.(type) {
	case *event.CallAttempt:
		if e.CallID == "" || len(c.calls) >= maxSidecarCalls {
			return
		}
		if _, ok := c.calls[e.CallID]; ok {
			return
		}
		acct := e.Account
		if acct == "" {
			acct = e.SIP.Account()
		}
		to := e.Destination
		if to == "" {
			to = e.RURIUser
		}
		c.calls[e.CallID] = &teardown.Call{ID: e.CallID, Account: acct, From: e.FromUser, To: to, Source: e.Source,
			Direction: "outbound", Start: e.Time}
	case *event.CallAnswered:
		if k, ok := c.calls[e.CallID]; ok && k.Answer.IsZero() {
			k.Answer = e.Time
		}
	case *event.CallEnded:
		delete(c.calls, e.CallID)
	}
}

// Calls implements teardown.Lister.
func (c *sidecarCalls) Calls() []teardown.Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]teardown.Call, 0, len(c.calls))
	for _, k := range c.calls {
		out = append(out, *k)
	}
	slices.SortFunc(out, func(a, b teardown.Call) int { return a.Start.Compare(b.Start) })
	return out
}

// HangupCall ends a listed call with uuid_kill. A call FreeSWITCH no longer
// has ("-ERR No such channel!") is forgotten and reported as ErrNoCall.
func (c *sidecarCalls) HangupCall(ctx context.Context, id string) error {
	c.mu.Lock()
	_, ok := c.calls[id]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("sidecar: %q: %w", capText(id), teardown.ErrNoCall)
	}
	err := c.esl.HangupCall(ctx, id)
	var ce *freeswitch.CommandError
	gone := errors.As(err, &ce) && strings.Contains(ce.Reply, "No such channel")
	if err == nil || gone {
		c.mu.Lock()
		delete(c.calls, id)
		c.mu.Unlock()
	}
	if gone {
		return fmt.Errorf("sidecar: %q: %w", capText(id), teardown.ErrNoCall)
	}
	return err
}

// SetDeadline has the call ended (uuid_kill) when at passes; a zero at
// clears it.
func (c *sidecarCalls) SetDeadline(id string, at time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.calls[id]
	if !ok {
		return fmt.Errorf("sidecar: %q: %w", capText(id), teardown.ErrNoCall)
	}
	k.Deadline = at
	return nil
}

// sweep ends the calls whose deadline passed and forgets those older than
// maxAge, every second until ctx ends.
func (c *sidecarCalls) sweep(ctx context.Context, now func() time.Time) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var due []string
		n := now()
		c.mu.Lock()
		for id, k := range c.calls {
			switch {
			case !k.Deadline.IsZero() && !n.Before(k.Deadline):
				due = append(due, id)
			case c.maxAge > 0 && n.Sub(k.Start) > c.maxAge:
				delete(c.calls, id)
			}
		}
		c.mu.Unlock()
		for _, id := range due {
			kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := c.HangupCall(kctx, id); err != nil && !errors.Is(err, teardown.ErrNoCall) {
				c.log.Warn("call past its deadline not ended", "call", id, "err", err)
			}
			cancel()
		}
	}
}

// capText quotes at most 80 bytes of s for an error.
func capText(s string) string {
	if len(s) > 80 {
		return s[:80]
	}
	return s
}

// deadliner sets a time at which a running call is ended.
type deadliner interface {
	SetDeadline(id string, at time.Time) error
}

// callControl returns what ends, lists and times running calls in this
// placement: the inline proxy for all three; beside FreeSWITCH, the Event
// Socket (uuid_kill, hupall) with the channels its events announced; nils
// when neither runs. Call policy's kill decisions go through it.
func (g *Guard) callControl() (teardown.Teardown, teardown.Lister, deadliner) {
	switch {
	case g.proxy != nil:
		return g.proxy, g.proxy, g.proxy
	case g.esl != nil && g.calls != nil:
		return g.esl, g.calls, g.calls
	}
	return nil, nil, nil
}
