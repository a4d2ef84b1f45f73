package logsource

import (
	"net/netip"
	"regexp"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

// fsPrefix matches the level and source of the sofia_reg.c lines fail2ban's
// freeswitch filter reads (fail2ban config/filter.d/freeswitch.conf),
// whatever comes before it: the date, the CPU-idle field ("97.63% ", added
// in newer FreeSWITCH; src/switch_log.c), a syslog prefix, or the older
// "[WARN] [SOFIA] [sofia_reg.c:N]" form.
const fsPrefix = `\[WARN(?:ING)?\](?: \[SOFIA\])? \[?sofia_reg\.c:\d+\]? `

var (
	// "SIP auth failure (%s) on sofia profile '%s' for [%s@%s] from ip %s"
	// (sofia_reg.c sofia_reg_handle_register_token, log-auth-failures).
	// The bracket is matched greedily up to the last "] from ip ", and the
	// address is the last field: FreeSWITCH writes it, while the user part
	// is the caller's To user and may hold "] from ip x.x.x.x".
	reFSAuth = regexp.MustCompile(fsPrefix + `SIP auth (failure|challenge) \((REGISTER|INVITE)\) on sofia profile '([^']*)' for \[(.*)\] from ip (\S+)$`)
	// "Can't find user [%s@%s] from %s" (sofia_reg.c sofia_reg_parse_auth),
	// logged for every unknown user whatever log-auth-failures says.
	reFSNoUser = regexp.MustCompile(fsPrefix + `Can't find user \[(.*)\] from (\S+)$`)
)

// fsParser reads FreeSWITCH's log file. With log-auth-failures on, one
// refused request for an unknown user writes two lines, "Can't find user"
// (from sofia_reg_parse_auth) and then "SIP auth failure" (from its
// caller); the second is dropped as a duplicate when it follows the first
// from the same address within a second.
type fsParser struct {
	now     func() time.Time
	loc     *time.Location
	unknown map[netip.Addr]time.Time
}

const fsDedupWindow = time.Second

func (p *fsParser) Parse(line []byte) (event.Event, string) {
	if m := reFSAuth.FindSubmatch(line); m != nil {
		if string(m[1]) == "challenge" {
			// A challenge is the normal start of every registration and
			// call; the log never shows whether it was answered.
			return nil, dropIgnored
		}
		addr, ok := parseAddr(string(m[5]))
		if !ok {
			return nil, dropBadAddr
		}
		t := lineTime(line, p.now, p.loc)
		if at, ok := p.unknown[addr]; ok {
			delete(p.unknown, addr)
			if d := t.Sub(at); d >= 0 && d <= fsDedupWindow {
				return nil, dropDuplicate
			}
		}
		user, _ := splitUserHost(string(m[4]))
		method := string(m[2])
		sip := event.SIP{Method: method, ToUser: user, HasCredentials: true}
		account := user
		if method == "INVITE" {
			// For an INVITE the bracket holds the To user: the number
			// dialled, not the account (sofia_reg.c, to_user).
			account = ""
			sip.RURIUser = user
		}
		return &event.AuthFailure{Meta: event.Meta{Time: t, Source: netip.AddrPortFrom(addr, 0), Transport: event.TransportUnknown, Listener: TypeFreeSWITCH},
			SIP: sip, Account: account, Code: 403}, dropNone
	}
	if m := reFSNoUser.FindSubmatch(line); m != nil {
		addr, ok := parseAddr(string(m[2]))
		if !ok {
			return nil, dropBadAddr
		}
		t := lineTime(line, p.now, p.loc)
		if len(p.unknown) >= 1024 {
			clear(p.unknown)
		}
		p.unknown[addr] = t
		// The bracket is the digest username and the realm or forced
		// domain: the account that does not exist.
		user, _ := splitUserHost(string(m[1]))
		return &event.AuthFailure{Meta: event.Meta{Time: t, Source: netip.AddrPortFrom(addr, 0), Transport: event.TransportUnknown, Listener: TypeFreeSWITCH},
			SIP: event.SIP{HasCredentials: true, AuthUser: user}, Account: user, Code: 403}, dropNone
	}
	return nil, dropIgnored
}

// splitUserHost splits "user@host" at the last '@'.
func splitUserHost(s string) (string, string) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '@' {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}
