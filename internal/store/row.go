package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tollguard/tollguard/internal/event"
)

// row is one stored event: the columns queries need, the whole event as
// canonical JSON, and the chain hash.
type row struct {
	Node    string
	Seq     int64
	TimeUS  int64
	Kind    string
	IP      string
	Port    int
	Account string
	CallID  string
	Code    int
	Rule    string
	Data    []byte
	Hash    []byte
}

// hashLen is the size of a chain hash (SHA-256).
const hashLen = sha256.Size

// newRow extracts the columns of ev and encodes it. Seq and Hash are set by
// the writer when the row takes its place in the chain.
func newRow(ev event.Event) (row, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return row{}, fmt.Errorf("encoding %s event: %w", ev.Kind(), err)
	}
	m := ev.Base()
	r := row{
		TimeUS: m.Time.UnixMicro(),
		Kind:   ev.Kind().String(),
		Data:   data,
	}
	src := m.Source
	if a := src.Addr(); a.IsValid() {
		r.IP = a.Unmap().WithZone("").String()
		r.Port = int(src.Port())
	}
	switch e := ev.(type) {
	case *event.Request:
		r.Account, r.CallID = e.SIP.Account(), e.CallID
	case *event.Response:
		r.Account, r.CallID, r.Code = e.SIP.Account(), e.CallID, e.Code
	case *event.AuthFailure:
		r.Account, r.CallID, r.Code = e.Account, e.CallID, e.Code
	case *event.Register:
		r.Account, r.CallID = e.Account, e.CallID
	case *event.CallAttempt:
		r.Account, r.CallID = e.Account, e.CallID
	case *event.CallAnswered:
		r.Account, r.CallID = e.Account, e.CallID
	case *event.CallEnded:
		r.Account, r.CallID, r.Code = e.Account, e.CallID, e.Code
	case *event.CallRinging:
		r.Account, r.CallID, r.Code = e.Account, e.CallID, e.Code
	case *event.Verdict:
		r.Account, r.CallID, r.Code, r.Rule = e.SIP.Account(), e.CallID, e.Code, e.Rule
	case *event.Ban:
		r.Account, r.Rule = e.Account, e.Rule
		r.IP = targetIP(r.IP, e.Value)
	case *event.Unban:
		r.Account = e.Account
		r.IP = targetIP(r.IP, e.Value)
	case *event.Admin:
		r.Rule = e.Action
	}
	r.Account, r.CallID, r.Rule = column(r.Account), column(r.CallID), column(r.Rule)
	return r, nil
}

// maxColumn caps the indexed text columns; the full value stays in Data.
// PostgreSQL B-tree entries must stay well under a page.
const maxColumn = 256

// column makes attacker text fit an indexed column on both engines: valid
// UTF-8, no NUL (PostgreSQL TEXT rejects both), at most maxColumn bytes.
// Filters pass their values through column too, so they still match.
func column(s string) string {
	if len(s) <= maxColumn && utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	// Each invalid byte becomes U+FFFD, as encoding/json does, so the
	// columns of an event read back from its JSON are the same.
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() <= maxColumn; {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteRune(utf8.RuneError)
		case r != 0:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	s = b.String()
	if len(s) <= maxColumn {
		return s
	}
	cut := maxColumn
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// targetIP makes a ban of an address findable by that address: when the
// event has no source of its own, the banned address is used.
func targetIP(src, value string) string {
	if src != "" {
		return src
	}
	if a, err := netip.ParseAddr(value); err == nil {
		return a.Unmap().WithZone("").String()
	}
	if p, err := netip.ParsePrefix(value); err == nil && p.IsSingleIP() {
		return p.Addr().Unmap().WithZone("").String()
	}
	return ""
}

// canonical returns the bytes a row's hash covers: every column but the hash,
// in a fixed order, each length-prefixed so no two rows encode alike.
//
// Version 1 is the chain of node "" (a guard alone, and every record
// written before nodes existed): its bytes are unchanged, so old records
// verify as before, and the empty node is implied by the version tag.
// Version 2, for a named node, adds the node's name after the tag: a
// record cannot be moved to another node's chain, and no v1 record
// encodes like a v2 one.
func (r *row) canonical(buf []byte) []byte {
	if r.Node == "" {
		buf = append(buf, "tollguard-row-v1"...)
	} else {
		buf = append(buf, "tollguard-row-v2"...)
		buf = binary.AppendUvarint(buf, uint64(len(r.Node)))
		buf = append(buf, r.Node...)
	}
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.Seq))
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.TimeUS))
	for _, s := range [...]string{r.Kind, r.IP, r.Account, r.CallID, r.Rule} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(r.Port))
	buf = binary.BigEndian.AppendUint64(buf, uint64(int64(r.Code)))
	buf = binary.AppendUvarint(buf, uint64(len(r.Data)))
	return append(buf, r.Data...)
}

// chainHash returns SHA-256(prev ‖ canonical row bytes). buf is scratch
// space and may be nil.
func (r *row) chainHash(prev []byte, buf []byte) ([]byte, []byte) {
	buf = append(buf[:0], prev...)
	buf = r.canonical(buf)
	sum := sha256.Sum256(buf)
	return sum[:], buf
}

// decodeEvent rebuilds the typed event of a stored row.
func decodeEvent(kind string, data []byte) (event.Event, error) {
	k, ok := event.ParseKind(kind)
	if !ok {
		return nil, fmt.Errorf("decoding event: unknown kind %q", kind)
	}
	ev := newEvent(k)
	if ev == nil {
		return nil, fmt.Errorf("decoding event: kind %q has no type", kind)
	}
	if err := json.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("decoding %s event: %w", kind, err)
	}
	return ev, nil
}

// newEvent returns a zero event of kind k.
func newEvent(k event.Kind) event.Event {
	switch k {
	case event.KindRequest:
		return new(event.Request)
	case event.KindResponse:
		return new(event.Response)
	case event.KindAuthFailure:
		return new(event.AuthFailure)
	case event.KindRegister:
		return new(event.Register)
	case event.KindCallAttempt:
		return new(event.CallAttempt)
	case event.KindCallAnswered:
		return new(event.CallAnswered)
	case event.KindCallEnded:
		return new(event.CallEnded)
	case event.KindBan:
		return new(event.Ban)
	case event.KindUnban:
		return new(event.Unban)
	case event.KindVerdict:
		return new(event.Verdict)
	case event.KindAdmin:
		return new(event.Admin)
	case event.KindCallRinging:
		return new(event.CallRinging)
	}
	return nil
}

// microTime converts stored microseconds to a UTC time.
func microTime(us int64) time.Time { return time.UnixMicro(us).UTC() }
