// Package testkit holds helpers that tests of several packages share.
package testkit

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// NetnsEnv marks a test binary running inside its own network namespace.
const NetnsEnv = "TOLLGUARD_NFT_NETNS"

// InNetns runs the calling test again in a new network namespace
// (unshare -n, as root) and reports false in the parent, which is done
// then; in that child it sets up loopback and reports true. Without root,
// unshare, nft or ip the test fails when CI is set and is skipped
// otherwise. Nothing here touches the host's own ruleset: the child
// refuses to run in the initial namespace.
func InNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(NetnsEnv) == "1" {
		SetupNetns(t)
		return true
	}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"unshare", "nft", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s needs %s (scripts/install-test-deps.sh)", t.Name(), strings.Join(missing, ", "))
		}
		t.Skipf("needs %s", strings.Join(missing, ", "))
	}
	cmd := exec.Command("unshare", "-n", os.Args[0], "-test.run", "^"+regexp.QuoteMeta(t.Name())+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), NetnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("in a private network namespace: %v\n%s", err, out)
	}
	t.Logf("in a private network namespace:\n%s", out)
	return false
}

var childOnce sync.Once

// SetupNetns checks that this is not the initial network namespace and
// brings loopback up with two extra IPv6 addresses.
func SetupNetns(tb testing.TB) {
	tb.Helper()
	var self, init syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &self); err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Stat("/proc/1/ns/net", &init); err == nil && self.Ino == init.Ino {
		tb.Fatalf("%s is set but this is the initial network namespace; refusing to change its ruleset", NetnsEnv)
	}
	var err error
	childOnce.Do(func() {
		for _, args := range [][]string{
			{"link", "set", "lo", "up"},
			{"-6", "addr", "add", "2001:db8::1/128", "dev", "lo", "nodad"},
			{"-6", "addr", "add", "2001:db8::2/128", "dev", "lo", "nodad"},
		} {
			if out, e := exec.Command("ip", args...).CombinedOutput(); e != nil {
				err = &exec.Error{Name: "ip " + strings.Join(args, " ") + ": " + string(out), Err: e}
				return
			}
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// NFT runs nft with a ruleset on stdin (the test's stand-in for a
// host firewall).
func NFT(tb testing.TB, ruleset string, args ...string) string {
	tb.Helper()
	cmd := exec.Command("nft", args...)
	cmd.Stdin = strings.NewReader(ruleset)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("nft %v: %v\n%s", args, err, out)
	}
	return string(out)
}
