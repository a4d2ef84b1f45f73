// Package alert tells the people on duty what tollguard saw, where they
// already are: a DingTalk or WeCom group robot, a webhook, or mail.
//
// A Notifier takes alerts from the daemon through Notify, which never
// blocks: each alert is routed by the configured rules to per-channel
// bounded queues (a full queue drops and counts). Each channel has its own
// goroutines, so a dead channel delays nobody else. Per channel, identical
// alerts are deduplicated, a burst of one kind becomes one message at once
// and a summary with the count at the end of the group interval, messages
// are rate limited, and failed deliveries are retried with backoff. Every
// message sent, failed or dropped is reported through Options.OnReport.
//
// Phone numbers are masked in every message, and text an attacker chose
// (User-Agent, account, reasons) is neutralised so it cannot add markdown,
// links or @-mentions.
package alert

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Kind is what an alert is about.
type Kind string

// The alert kinds (config.AlertKinds).
const (
	KindBan          Kind = "ban"           // a source was banned
	KindCompromised  Kind = "compromised"   // an account looks compromised
	KindBlockedCall  Kind = "blocked_call"  // a call was refused or ended
	KindSpend        Kind = "spend"         // spend went over a threshold
	KindLockdown     Kind = "lockdown"      // lockdown turned on or off
	KindUpstreamDown Kind = "upstream_down" // the PBX stopped answering
	KindStoreDown    Kind = "store_down"    // the event store failed
	KindESLDown      Kind = "esl_down"      // the Event Socket connection failed
	KindClusterDown  Kind = "cluster_down"  // Redis unreachable: this node defends alone
	KindTest         Kind = "test"          // `tollguard alert test`
)

// Severity orders alerts for rules' min_severity.
type Severity int

// Severities. The zero value means "the kind's default" (DefaultSeverity).
const (
	SeverityDefault Severity = iota
	Info
	Warning
	Critical
)

// String returns info, warning or critical.
func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Critical:
		return "critical"
	}
	return "default"
}

// ParseSeverity parses info, warning or critical; "" is Info.
func ParseSeverity(s string) (Severity, error) {
	switch s {
	case "", "info":
		return Info, nil
	case "warning":
		return Warning, nil
	case "critical":
		return Critical, nil
	}
	return 0, fmt.Errorf("unknown severity %q", s)
}

// DefaultSeverity is the severity of an alert of kind k that sets none:
// warning for bans and blocked calls, info for tests, critical otherwise.
func DefaultSeverity(k Kind) Severity {
	switch k {
	case KindBan, KindBlockedCall, KindClusterDown:
		return Warning
	case KindTest:
		return Info
	}
	return Critical
}

// Alert is one thing to tell. Which fields matter depends on Kind; the
// rest stay zero. Strings may come from attackers: renderers mask phone
// numbers and neutralise markup in all of them.
type Alert struct {
	Kind     Kind
	Severity Severity
	Time     time.Time
	// Addr is the source (ban, blocked call, compromised).
	Addr netip.Addr
	// Account is the SIP account or extension.
	Account string
	// Destination is the called number (blocked call, spend).
	Destination string
	// Rule is the rule that decided (register_failure[0], scanner, …).
	Rule string
	// Reason is free text from the decision.
	Reason string
	// UserAgent is the User-Agent the source sent.
	UserAgent string
	// For is the ban's length.
	For time.Duration
	// Amount, Threshold and Currency describe spend.
	Amount, Threshold float64
	Currency          string
	// On is lockdown's new state.
	On bool
	// Target names what went down: the upstream URL, the store, the ESL
	// address.
	Target string
	// Resolved marks the end of an outage (the upstream answers again).
	Resolved bool
}

// severity returns a's severity, defaulted.
func (a *Alert) severity() Severity {
	if a.Severity == SeverityDefault {
		return DefaultSeverity(a.Kind)
	}
	return a.Severity
}

// key identifies identical alerts for deduplication.
func (a *Alert) key() string {
	var b strings.Builder
	b.WriteString(string(a.Kind))
	for _, s := range []string{a.Addr.String(), a.Account, a.Destination, a.Rule, a.Target} {
		b.WriteByte(0)
		b.WriteString(s)
	}
	fmt.Fprintf(&b, "\x00%t%t", a.On, a.Resolved)
	return b.String()
}

// Report is the outcome of one message: sent (Err nil), failed after its
// retries, or dropped because the channel's outbox was full.
type Report struct {
	// Channel is the channel's name.
	Channel string
	// Kind and Severity of the message; Count is how many alerts it
	// carries (a summary carries more than one).
	Kind     Kind
	Severity Severity
	Count    int
	// Attempts is how many deliveries were tried.
	Attempts int
	// Err is nil when the message was delivered.
	Err error
}
