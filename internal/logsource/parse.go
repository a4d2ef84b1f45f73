package logsource

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

// The source types, as written in the config's sources[].type.
const (
	TypeFreeSWITCH = "freeswitch_log"
	TypeModCTI     = "mod_cti_fail2ban"
	TypeAsterisk   = "asterisk_security"
)

// Reasons a line yields no event (the reason label of
// tollguard_logsource_dropped_total). Lines that simply are not about
// security are not drops.
const (
	dropNone      = ""
	dropIgnored   = "ignored" // not a line this format maps
	dropBadAddr   = "bad_address"
	dropAmbiguous = "ambiguous" // several addresses: possibly forged, refused
	dropDuplicate = "duplicate" // a second line about the same failure
	dropTooLong   = "too_long"
)

// Parser turns one log line (without its newline) into an event. The
// second result is a drop reason when there is no event. A Parser may keep
// a little state between lines and is not safe for concurrent use.
type Parser interface {
	Parse(line []byte) (event.Event, string)
}

// NewParser returns the parser for a source type. now supplies the time
// when a line's own timestamp cannot be read; loc is the zone of
// timestamps written without one (FreeSWITCH and Asterisk write local time).
func NewParser(typ string, now func() time.Time, loc *time.Location) (Parser, error) {
	if now == nil {
		now = time.Now
	}
	if loc == nil {
		loc = time.Local
	}
	switch typ {
	case TypeFreeSWITCH:
		return &fsParser{now: now, loc: loc, unknown: map[netip.Addr]time.Time{}}, nil
	case TypeModCTI:
		return &ctiParser{now: now, loc: loc}, nil
	case TypeAsterisk:
		return &asteriskParser{now: now, loc: loc}, nil
	}
	return nil, fmt.Errorf("logsource: unknown source type %q (want %s, %s or %s)", typ, TypeFreeSWITCH, TypeModCTI, TypeAsterisk)
}

// reStamp reads "YYYY-MM-DD HH:MM:SS[.ffffff]" or, in older FreeSWITCH
// lines, "MM-DD HH:MM:SS[.ffffff]" at the start of a line.
var reStamp = regexp.MustCompile(`^(?:(\d{4})-)?(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?`)

// lineTime returns the timestamp at the start of line in loc, or now().
func lineTime(line []byte, now func() time.Time, loc *time.Location) time.Time {
	m := reStamp.FindSubmatch(line)
	if m == nil {
		return now()
	}
	n := func(b []byte) int { v, _ := strconv.Atoi(string(b)); return v }
	t := now().In(loc)
	year := t.Year()
	if len(m[1]) > 0 {
		year = n(m[1])
	}
	ns := 0
	if f := m[7]; len(f) > 0 {
		ns = n(f)
		for i := len(f); i < 9; i++ {
			ns *= 10
		}
	}
	mon, day := n(m[2]), n(m[3])
	if mon < 1 || mon > 12 || day < 1 || day > 31 {
		return now()
	}
	return time.Date(year, time.Month(mon), day, n(m[4]), n(m[5]), n(m[6]), ns, loc)
}

// parseAddr parses an address written by the PBX, normalising IPv4-mapped
// IPv6 addresses and refusing zones.
func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
