package cluster

import (
	"testing"

	"github.com/tollguard/tollguard/internal/decision"
)

// FuzzDecode feeds arbitrary bytes, as a hostile Redis could store or
// publish them, to the decoder: it must never panic, and what it accepts
// must have a valid type and scope, a bounded size and a node name.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"node":"a","decision":{"type":"ban","scope":"ip","prefix":"192.0.2.1/32","origin":"engine","rule":"jail","at":"2026-11-30T10:00:00Z","until":"2026-11-30T11:00:00Z"}}`))
	f.Add([]byte(`{"v":1,"node":"b","decision":{"type":"unban","scope":"ip_account","prefix":"2001:db8::1/128","account":"1001"}}`))
	f.Add([]byte(`{"v":1,"node":"b","decision":{"type":"ban","scope":"prefix","prefix":"0.0.0.0/0"}}`))
	f.Add([]byte(`{"v":1,"node":"","decision":null}`))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		if err != nil {
			return
		}
		d := m.local()
		if !d.Scope.Valid() || (d.Type != decision.TypeBan && d.Type != decision.TypeUnban) {
			t.Fatalf("accepted %+v", d)
		}
		if !nodeName.MatchString(m.Node) || len(b) > maxMessage {
			t.Fatalf("accepted node %q from %d bytes", m.Node, len(b))
		}
		if d.Scope != decision.ScopeAccount && !d.Prefix.IsValid() {
			t.Fatalf("accepted a ban without an address: %+v", d)
		}
		_ = field(d.Key())
	})
}
