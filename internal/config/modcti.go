package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// UnmarshalYAML reads one jail.register_failure entry in tollguard's form
// ({findtime: 60s, maxretry: 3, banmode: ip_account, bantime: 180s}) or in
// mod_cti's (cti.json's register_failure: findtime and bantime as integer
// seconds, banmode 0 or 1), and normalises mod_cti's form at load: findtime
// 60 becomes 60s, banmode 0 becomes ip and banmode 1 becomes ip_account, so
// everything after the loader sees one form. Unknown keys are errors, as
// everywhere else in the file.
func (r *JailRule) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a register_failure entry is a mapping like {findtime: 60s, maxretry: 3, banmode: ip_account, bantime: 180s}", n.Line)
	}
	var out JailRule
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var err error
		switch k.Value {
		case "findtime":
			out.FindTime, err = jailDuration(v)
		case "bantime":
			out.BanTime, err = jailDuration(v)
		case "maxretry":
			err = v.Decode(&out.MaxRetry)
		case "banmode":
			out.BanMode, err = banMode(v)
		default:
			return fmt.Errorf("line %d: field %s not found in type config.JailRule", k.Line, k.Value)
		}
		if err != nil {
			return err
		}
	}
	*r = out
	return nil
}

// jailDuration accepts a duration ("60s", "3m", "1d") or, as mod_cti
// writes it, a whole number of seconds (60).
func jailDuration(v *yaml.Node) (Duration, error) {
	s := strings.TrimSpace(v.Value)
	if v.Kind == yaml.ScalarNode && isDigits(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > int64(365*24*time.Hour/time.Second) {
			return 0, fmt.Errorf("line %d: %q seconds is out of range (at most one year)", v.Line, s)
		}
		return Duration(time.Duration(n) * time.Second), nil
	}
	var d Duration
	err := d.UnmarshalYAML(v)
	return d, err
}

// banMode maps mod_cti's numeric banmode to tollguard's names: 0 bans the
// address, 1 bans the account from that address only (the address and the
// extension must both match). Names pass through for Validate to check.
func banMode(v *yaml.Node) (string, error) {
	if v.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("line %d: banmode is ip, ip_account, 0 or 1", v.Line)
	}
	switch s := strings.TrimSpace(v.Value); s {
	case "0":
		return "ip", nil
	case "1":
		return "ip_account", nil
	default:
		return s, nil
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
