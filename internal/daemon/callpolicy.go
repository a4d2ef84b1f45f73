package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/callpolicy/token"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine"
	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/teardown"
)

// Files in data_dir that call policy keeps (both 0600).
//
// The lockdown state is a file, not a store row: it is read before the
// proxy listens, with nothing else open, must survive a store that is
// being restored or is down, and an operator can inspect or remove it by
// hand in an emergency. Call token secrets are a file too: they are
// secrets (the store's events are exported, backed up and shown in the
// console; secrets must never be), and the file is small enough to
// rewrite atomically on each `tollguard token new`.
const (
	lockdownFile = "lockdown"
	tokensFile   = "call_tokens.yaml"
)

// policy is the daemon's call policy wiring: the kill queue (decisions of
// type kill carried out through the teardown, off the packet path), the
// lockdown file and the token secrets file.
type policy struct {
	g     *Guard
	log   *slog.Logger
	kills chan decision.Decision
	// dropped counts kill decisions lost to a full queue.
	dropped atomic.Int64

	mu    sync.Mutex // lockdown and token file writes
	since time.Time
}

func newPolicy(g *Guard) *policy {
	return &policy{g: g, log: g.log.With("component", "callpolicy"), kills: make(chan decision.Decision, 1024)}
}

// wrap returns next with kill decisions taken out: they go to the
// teardown queue, never to the ban set or the store's ban table.
func (p *policy) wrap(next decision.Applier) decision.Applier {
	return decision.ApplierFunc(func(d decision.Decision) {
		if d.Type != decision.TypeKill {
			next.Apply(d)
			return
		}
		select {
		case p.kills <- d:
		default:
			p.dropped.Add(1)
			p.log.Error("kill queue full: decision dropped", "decision", d.String())
		}
	})
}

// teardown returns what ends, lists and times calls in this placement:
// the inline proxy, or the Event Socket beside FreeSWITCH (nil: none).
func (p *policy) teardown() (teardown.Teardown, teardown.Lister, deadliner) {
	return p.g.callControl()
}

// run carries out kill decisions until ctx ends.
func (p *policy) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-p.kills:
			p.kill(ctx, d)
		}
	}
}

func (p *policy) kill(ctx context.Context, d decision.Decision) {
	td, _, dl := p.teardown()
	if td == nil {
		p.log.Warn("kill decision without a teardown (no inline proxy, no event socket)", "decision", d.String())
		return
	}
	if d.Scope == decision.ScopeCall && !d.Until.IsZero() && d.Until.After(p.g.now()) {
		if err := dl.SetDeadline(d.CallID, d.Until); err != nil {
			p.log.Info("call deadline not set", "call_id", capLog(d.CallID), "err", err)
		}
		return
	}
	// Each teardown waits for both sides; run it aside so one slow phone
	// does not hold up the queue.
	go func() {
		var scope KillScope
		switch d.Scope {
		case decision.ScopeCall:
			scope.CallID = d.CallID
		case decision.ScopeAccount:
			scope.Account = d.Account
		case decision.ScopeIP:
			scope.Addr = d.Prefix.Addr()
		}
		n, err := Kill(ctx, td, scope)
		if err != nil && !errors.Is(err, teardown.ErrNoCall) {
			p.log.Info("calls not cleanly ended", "target", capLog(d.Target()), "rule", d.Rule, "err", err)
		}
		p.log.Warn("calls ended by call policy", "scope", string(d.Scope), "target", capLog(d.Target()), "rule", d.Rule, "reason", d.Reason, "calls", n)
	}()
}

func capLog(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

// readPolicyInputs reads call_policy.rates (nil when unset) and the call
// token secrets (nil when the file does not exist).
func readPolicyInputs(cfg *config.Config) (rates []byte, secrets map[string]string, err error) {
	if f := cfg.CallPolicy.Rates; f != "" {
		if rates, err = os.ReadFile(f); err != nil {
			return nil, nil, fmt.Errorf("reading call_policy.rates: %w", err)
		}
	}
	secrets, err = readSecrets(cfg.DataDir)
	return rates, secrets, err
}

func readSecrets(dataDir string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, tokensFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading call token secrets: %w", err)
	}
	var m map[string]string
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("reading call token secrets %s: %w", tokensFile, err)
	}
	return m, nil
}

// writeFile0600 replaces path atomically with data, mode 0600.
func writeFile0600(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// loadLockdown applies the lockdown file: present and "on" means on.
func (p *policy) loadLockdown() error {
	b, err := os.ReadFile(filepath.Join(p.g.config().DataDir, lockdownFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading lockdown state: %w", err)
	}
	state, since, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	p.since, _ = time.Parse(time.RFC3339, since)
	if state == "on" {
		p.g.eng.SetLockdown(true)
		p.log.Warn("lockdown is on (kept from before the restart): only lockdown.allow_accounts may place calls", "since", since)
	}
	return nil
}

// policyService implements api.PolicyService.
type policyService struct{ p *policy }

var _ api.PolicyService = policyService{}

func (s policyService) state() api.LockdownState {
	allow := s.p.g.config().Lockdown.AllowAccounts
	if allow == nil {
		allow = []string{}
	}
	return api.LockdownState{On: s.p.g.eng.Lockdown(), Since: s.p.since, AllowAccounts: allow}
}

// Lockdown implements api.PolicyService.
func (s policyService) Lockdown(context.Context) (api.LockdownState, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	return s.state(), nil
}

// SetLockdown implements api.PolicyService: the engine's switch flips
// first (new calls are refused at once), then the file is written.
func (s policyService) SetLockdown(ctx context.Context, on, hangup bool, actor string) (api.LockdownState, error) {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.g.now()
	p.g.eng.SetLockdown(on)
	p.since = now
	state := "off"
	if on {
		state = "on"
	}
	if err := writeFile0600(filepath.Join(p.g.config().DataDir, lockdownFile), []byte(state+" "+now.UTC().Format(time.RFC3339)+"\n")); err != nil {
		return s.state(), fmt.Errorf("lockdown is %s but not saved (it will not survive a restart): %w", state, err)
	}
	p.log.Warn("lockdown "+state, "by", actor, "hangup", hangup)
	p.g.alerts.lockdown(on, actor)
	st := s.state()
	if on && hangup {
		st.Hangups = p.hangupOutsiders()
	}
	return st, nil
}

// hangupOutsiders ends (in the background) the running calls of accounts
// not on lockdown.allow_accounts and returns how many.
func (p *policy) hangupOutsiders() int {
	td, ls, _ := p.teardown()
	if td == nil {
		return 0
	}
	allow := map[string]bool{}
	for _, a := range p.g.config().Lockdown.AllowAccounts {
		allow[detector.Normalize(a)] = true
	}
	n := 0
	for _, c := range ls.Calls() {
		if c.Direction != "outbound" || allow[detector.Normalize(c.Account)] {
			continue
		}
		n++
		p.kill(context.Background(), decision.Decision{Type: decision.TypeKill, Scope: decision.ScopeCall, CallID: c.ID,
			Account: c.Account, Rule: "lockdown", Origin: decision.OriginAdmin, At: p.g.now()})
	}
	return n
}

// CheckCall implements api.PolicyService.
func (s policyService) CheckCall(ctx context.Context, account string, ip netip.Addr, destination string) api.CheckReply {
	v := s.p.g.eng.CheckCall(ctx, account, ip, destination)
	s.p.g.alerts.verdict(ip, nil, account, destination, v)
	r := api.CheckReply{Result: "allow", Rule: v.Rule, Policy: v.Policy, Reason: v.Reason, Mode: v.Mode, Loss: v.Loss}
	if v.Action != engine.Pass {
		r.Result, r.Code = "deny", v.Code
	}
	s.p.g.st.Record(&event.Verdict{Meta: event.Meta{Time: s.p.g.now(), Source: netip.AddrPortFrom(ip, 0), Listener: "check"},
		SIP:    event.SIP{Method: "INVITE", FromUser: account, AuthUser: account, RURIUser: destination},
		Action: v.Action.String(), Code: v.Code, Rule: v.Rule, Reason: v.Reason, Policy: v.Policy, Mode: v.Mode, Counters: v.Counters, Loss: v.Loss})
	return r
}

// NewToken implements api.PolicyService: a new secret replaces the
// account's old one in the secrets file, and the engine takes it at once.
func (s policyService) NewToken(ctx context.Context, account string) (api.TokenReply, error) {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	cfg := p.g.config()
	k, err := token.NewKey("tollguard", account, nil)
	if err != nil {
		return api.TokenReply{}, err
	}
	secrets, err := readSecrets(cfg.DataDir)
	if err != nil {
		return api.TokenReply{}, err
	}
	if secrets == nil {
		secrets = map[string]string{}
	}
	secrets[account] = k.Secret
	b, err := yaml.Marshal(secrets)
	if err != nil {
		return api.TokenReply{}, err
	}
	if err := writeFile0600(filepath.Join(cfg.DataDir, tokensFile), b); err != nil {
		return api.TokenReply{}, fmt.Errorf("saving call token secret: %w", err)
	}
	rates, _, err := readPolicyInputs(cfg)
	if err != nil {
		return api.TokenReply{}, err
	}
	if err := p.g.eng.SetCallPolicyInputs(rates, secrets); err != nil {
		return api.TokenReply{}, err
	}
	listed := false
	for _, a := range cfg.CallTokens.Accounts {
		listed = listed || detector.Normalize(a) == detector.Normalize(account)
	}
	p.log.Info("call token secret created", "account", capLog(account), "listed", listed)
	return api.TokenReply{Account: account, Secret: k.Secret, URI: k.URI, Listed: listed}, nil
}
