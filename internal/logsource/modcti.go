package logsource

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

// ctiParser reads mod_cti's cti_fail2ban.log. mod_cti is closed source; the
// line shape comes from its vendor's documentation (ddcti.com, "fail2ban"
// install page):
//
//	2024-04-13 17:21:01.959347 98.47% [NOTICE] cti_fail2ban.c:35 write to fail2ban:ip[124.32.10.1] user[1177] at[2024-04-13T17:21:01.959347+0800] Registration failed succeed!
//
// The parser does not depend on the prefix: it reads the first "ip[...]"
// (mod_cti writes the address before the user), the user between
// " user[" and the last "] at[", the time in at[...] and the message after
// it. A "Registration failed" message is an authentication failure; the
// other messages (calls refused by cti.json's destination rules) are not
// mapped.
type ctiParser struct {
	now func() time.Time
	loc *time.Location
}

var (
	ctiIP   = []byte("ip[")
	ctiUser = []byte(" user[")
	ctiAt   = []byte("] at[")
	ctiFail = []byte("Registration failed")
)

func (p *ctiParser) Parse(line []byte) (event.Event, string) {
	i := bytes.Index(line, ctiIP)
	if i < 0 {
		return nil, dropIgnored
	}
	rest := line[i+len(ctiIP):]
	j := bytes.IndexByte(rest, ']')
	if j < 0 {
		return nil, dropIgnored
	}
	addr, ok := parseAddr(string(rest[:j]))
	if !ok {
		return nil, dropBadAddr
	}
	rest = rest[j+1:]
	u := bytes.Index(rest, ctiUser)
	a := bytes.LastIndex(rest, ctiAt)
	if u != 0 || a < u {
		return nil, dropIgnored
	}
	user := string(rest[len(ctiUser):a])
	tail := rest[a+len(ctiAt):]
	k := bytes.IndexByte(tail, ']')
	if k < 0 {
		return nil, dropIgnored
	}
	msg := bytes.TrimSpace(tail[k+1:])
	if !bytes.HasPrefix(msg, ctiFail) {
		return nil, dropIgnored
	}
	t, err := time.Parse("2006-01-02T15:04:05.999999999-0700", string(tail[:k]))
	if err != nil {
		t = lineTime(line, p.now, p.loc)
	}
	return &event.AuthFailure{Meta: event.Meta{Time: t, Source: netip.AddrPortFrom(addr, 0), Transport: event.TransportUnknown, Listener: TypeModCTI},
		SIP: event.SIP{Method: "REGISTER", ToUser: user, HasCredentials: true}, Account: user, Code: 403}, dropNone
}
