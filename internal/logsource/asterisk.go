package logsource

import (
	"bytes"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

// asteriskParser reads Asterisk's security log (res_security_log.c:
// `SecurityEvent="<Name>"` then `,<Key>="<value>"` per field), for example
// (fail2ban tests/files/logs/asterisk):
//
//	[2015-05-25 07:19:19] SECURITY[6988] res_security_log.c: SecurityEvent="InvalidAccountID",EventTV="2015-05-25T07:19:19.015+0300",Severity="Error",Service="PJSIP",EventVersion="1",AccountID="70000180",SessionID="...",LocalAddress="IPV4/UDP/1.2.3.4/5060",RemoteAddress="IPV4/UDP/10.250.251.252/5061"
//
// Values are not escaped, and AccountID (the From or auth user),
// SessionID (the Call-ID) and Response are the caller's text, so a caller
// can write `",RemoteAddress="IPV4/UDP/5.6.7.8/1"` into a line.
// fail2ban takes the last RemoteAddress, which a forged Response still
// wins. Here a line whose RemoteAddress fields name more than one address
// is refused and counted (ambiguous): a forger can hide one line of its
// own but never aim a ban at someone else.
type asteriskParser struct {
	now func() time.Time
	loc *time.Location
}

var (
	reAstEvent  = regexp.MustCompile(`SecurityEvent="(InvalidAccountID|ChallengeResponseFailed|InvalidPassword|FailedACL)"`)
	reAstRemote = regexp.MustCompile(`RemoteAddress="IPV[46]/(UDP|TCP|TLS|WS|WSS)/([0-9A-Fa-f:.]+)/(\d+)"`)
	reAstField  = regexp.MustCompile(`,(Service|AccountID|EventTV)="([^"]*)"`)
	astHead     = []byte(`SecurityEvent="`)
)

func (p *asteriskParser) Parse(line []byte) (event.Event, string) {
	h := bytes.Index(line, astHead)
	if h < 0 {
		return nil, dropIgnored
	}
	body := line[h:]
	ev := reAstEvent.FindSubmatch(body)
	if ev == nil || !bytes.HasPrefix(body, ev[0]) {
		return nil, dropIgnored
	}
	remotes := reAstRemote.FindAllSubmatch(body, -1)
	if len(remotes) == 0 {
		return nil, dropBadAddr
	}
	var addr netip.AddrPort
	var transport string
	for i, r := range remotes {
		a, ok := parseAddr(string(r[2]))
		port, err := strconv.ParseUint(string(r[3]), 10, 16)
		if !ok || err != nil {
			return nil, dropBadAddr
		}
		ap := netip.AddrPortFrom(a, uint16(port))
		if i > 0 && ap.Addr() != addr.Addr() {
			return nil, dropAmbiguous
		}
		addr, transport = ap, strings.ToLower(string(r[1]))
	}
	// The first Service, AccountID and EventTV are the real ones: they
	// come before every caller-controlled field except AccountID itself.
	var service, account, tv string
	for _, f := range reAstField.FindAllSubmatch(body, -1) {
		switch v := string(f[2]); string(f[1]) {
		case "Service":
			if service == "" {
				service = v
			}
		case "AccountID":
			if account == "" {
				account = v
			}
		case "EventTV":
			if tv == "" {
				tv = v
			}
		}
	}
	if service != "SIP" && service != "PJSIP" {
		// AMI and other services: not SIP authentication.
		return nil, dropIgnored
	}
	if account == "<unknown>" {
		account = ""
	}
	name := string(ev[1])
	sip := event.SIP{HasCredentials: name != "FailedACL", AuthUser: account}
	if !sip.HasCredentials {
		sip.FromUser, sip.AuthUser = account, ""
	}
	return &event.AuthFailure{
		Meta:    event.Meta{Time: p.eventTime(tv, line), Source: addr, Transport: asteriskTransport(transport), Listener: TypeAsterisk},
		SIP:     sip,
		Account: account,
		Code:    403,
	}, dropNone
}

// eventTime reads EventTV: "2015-05-24T08:42:16.296+0300" in current
// Asterisk, "1373098165-824497" (seconds-microseconds) in older ones.
func (p *asteriskParser) eventTime(tv string, line []byte) time.Time {
	if t, err := time.Parse("2006-01-02T15:04:05.999999999-0700", tv); err == nil {
		return t
	}
	if s, us, ok := strings.Cut(tv, "-"); ok {
		sec, err1 := strconv.ParseInt(s, 10, 64)
		usec, err2 := strconv.ParseInt(us, 10, 64)
		if err1 == nil && err2 == nil && sec > 0 && usec >= 0 && usec < 1e6 {
			return time.Unix(sec, usec*1000)
		}
	}
	if i := bytes.IndexByte(line, '['); i >= 0 {
		return lineTime(line[i+1:], p.now, p.loc)
	}
	return p.now()
}

// asteriskTransport is the transport a RemoteAddress named, or
// event.TransportUnknown (unproven) when it named none.
func asteriskTransport(t string) event.Transport {
	if t == "" {
		return event.TransportUnknown
	}
	return event.Transport(t)
}
