package config

import (
	"strings"
	"testing"
)

func TestCallPolicyValidation(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"call_policy:\n  rules:\n    - {name: a, action: reject}\n    - {name: a, action: reject}\n", "duplicate rule name"},
		{"call_policy:\n  rules:\n    - {name: 'a\"b', action: reject}\n", "want 1 to 64 letters"},
		{"call_policy:\n  rules:\n    - {name: a, action: dance}\n", "unknown action"},
		{"call_policy:\n  rules:\n    - {name: a, action: reject, mode: loud}\n", "unknown mode"},
		{"call_policy:\n  rules:\n    - {name: a, action: reject, ban: account}\n", "unknown ban"},
		{"call_policy:\n  rules:\n    - {name: a}\n", "neither action nor limits"},
		{"call_policy:\n  rules:\n    - {name: a, warn: {call_duration: 1h}}\n", "only block cuts calls"},
		{"call_policy:\n  expected_duration: 0s\n", "expected_duration"},
		{"call_tokens: {header: 'X Token'}\n", "call_tokens.header"},
	}
	for _, tc := range cases {
		_, err := Parse("t.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.yaml, err, tc.want)
		}
	}
	if _, err := Parse("t.yaml", []byte("call_policy:\n  default_country: CN\n  rules:\n    - name: burst\n      match: {accounts: [\"*\"], sources: [\"0.0.0.0/0\"], hours: \"00:00-23:59\", days: \"mon-sun\"}\n      warn:  {calls_per_minute: 30, concurrent: 10}\n      block: {calls_per_minute: 60, concurrent: 20, sequential_same_number: 5, distinct_destinations_per_hour: 300, calls_per_day: 5000, call_duration: 2h, spend_per_hour: 200}\n      mode: enforce\n")); err != nil {
		t.Errorf("the issue's example: %v", err)
	}
}
