package fail2ban

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
)

// Client lifts bans in a running fail2ban through fail2ban-client, so that
// an operator's `tollguard unban` also frees the address fail2ban banned
// from tollguard's log (fail2ban keeps its own ban time, often longer).
type Client struct {
	// Jail is the jail that reads tollguard's log (config
	// log.fail2ban_jail), e.g. tollguard.
	Jail string
	// Command is the fail2ban-client command line before its arguments.
	// Default: fail2ban-client (found on PATH); tests add -c DIR -s SOCKET.
	Command []string
}

// Unban runs "fail2ban-client set JAIL unbanip ADDR" and returns how many
// bans fail2ban lifted (0 when it held none for addr). It blocks until
// fail2ban-client exits or ctx ends.
func (c Client) Unban(ctx context.Context, addr netip.Addr) (int, error) {
	if !addr.IsValid() {
		return 0, errors.New("fail2ban: unbanip: invalid address")
	}
	cmd := c.Command
	if len(cmd) == 0 {
		cmd = []string{"fail2ban-client"}
	}
	args := append(append([]string(nil), cmd[1:]...), "set", c.Jail, "unbanip", addr.Unmap().String())
	out, err := exec.CommandContext(ctx, cmd[0], args...).CombinedOutput()
	text := strings.TrimSpace(string(out))
	if err != nil {
		return 0, fmt.Errorf("fail2ban-client set %s unbanip %s: %w: %q", c.Jail, addr.Unmap(), err, capOutput(text))
	}
	// The reply is the number of addresses unbanned (fail2ban 0.11+);
	// older servers print nothing useful, which counts as one.
	if n, err := strconv.Atoi(lastLine(text)); err == nil {
		return n, nil
	}
	return 1, nil
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[i+1:])
	}
	return s
}

func capOutput(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}
