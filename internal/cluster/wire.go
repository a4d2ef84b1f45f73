package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/decision/screen"
)

// maxMessage caps one ban's encoding in Redis: anything longer is hostile.
const maxMessage = 4096

// OriginPrefix starts the Origin of every decision this package applies
// locally: "cluster:<node>" names the node that decided it.
const OriginPrefix = "cluster:"

// message is one ban or unban as stored in the hash and published on the
// channel. V is the format version; Node the node that decided it.
type message struct {
	V        int               `json:"v"`
	Node     string            `json:"node"`
	Decision decision.Decision `json:"decision"`
}

// field is the hash field of a decision's key: one entry per banned
// target, so a later ban of the same target replaces the earlier one.
func field(k decision.Key) string {
	p := ""
	if k.Prefix.IsValid() {
		p = screen.Norm(k.Prefix).String()
	}
	return string(k.Scope) + "|" + p + "|" + k.Account
}

func encode(node string, d decision.Decision) ([]byte, error) {
	b, err := json.Marshal(message{V: 1, Node: node, Decision: d})
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", d, err)
	}
	if len(b) > maxMessage {
		return nil, fmt.Errorf("encoding %s: %d bytes, more than %d", d, len(b), maxMessage)
	}
	return b, nil
}

var errMalformed = errors.New("malformed ban")

// decode parses one stored or published ban. It checks shape only; the
// caller screens the ban against the allow list.
func decode(b []byte) (message, error) {
	var m message
	if len(b) > maxMessage {
		return m, fmt.Errorf("%w: %d bytes", errMalformed, len(b))
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if m.V != 1 {
		return m, fmt.Errorf("%w: version %d", errMalformed, m.V)
	}
	if !nodeName.MatchString(m.Node) {
		return m, fmt.Errorf("%w: node name %.40q", errMalformed, m.Node)
	}
	d := m.Decision
	if d.Type != decision.TypeBan && d.Type != decision.TypeUnban {
		return m, fmt.Errorf("%w: type %.20q", errMalformed, d.Type)
	}
	if !d.Scope.Valid() {
		return m, fmt.Errorf("%w: scope %.20q", errMalformed, d.Scope)
	}
	if d.Scope != decision.ScopeAccount && !d.Prefix.IsValid() {
		return m, fmt.Errorf("%w: no address", errMalformed)
	}
	if len(d.Rule) > 128 || len(d.Reason) > 512 || len(d.Origin) > 128 {
		return m, fmt.Errorf("%w: oversized text field", errMalformed)
	}
	return m, nil
}

// local turns a received message into the decision applied on this node.
func (m message) local() decision.Decision {
	d := m.Decision
	d.Origin = OriginPrefix + m.Node
	return d
}

// shared reports whether a decision made on this node goes to the cluster:
// not decisions received from it (no echo), not feed bans (every node pulls
// the feeds itself), and not expired ones.
func shared(d decision.Decision, now time.Time) bool {
	if strings.HasPrefix(d.Origin, OriginPrefix) || strings.HasPrefix(d.Origin, "intel:") {
		return false
	}
	if d.Type == decision.TypeBan && d.Expired(now) {
		return false
	}
	return d.Type == decision.TypeBan || d.Type == decision.TypeUnban
}

// score is the sorted-set score of a ban: its expiry in Unix milliseconds,
// "+inf" for a ban without expiry.
func score(d decision.Decision) string {
	if d.Until.IsZero() {
		return "+inf"
	}
	return fmt.Sprint(d.Until.UnixMilli())
}

// key is d's key with the prefix normalised, as decision.Set stores it.
func key(d decision.Decision) decision.Key {
	k := d.Key()
	if k.Prefix.IsValid() {
		k.Prefix = screen.Norm(k.Prefix)
	}
	return k
}
