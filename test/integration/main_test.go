// Package integration runs the real tollguard binary between real SIP peers
// (Kamailio as the PBX, sipp phones and trunks, SIPVicious attackers), each
// on its own loopback address. The binary is built once in TestMain.
package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var (
	tollguardBin string
	buildErr     error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tollguard-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	bin := filepath.Join(dir, "tollguard")
	// TOLLGUARD_BIN tests a binary built elsewhere (a release build, or a
	// known-good build while the tree is mid-change).
	var out []byte
	if b := os.Getenv("TOLLGUARD_BIN"); b != "" {
		bin, err = b, nil
	} else {
		out, err = exec.Command("go", "build", "-o", bin, "github.com/tollguard/tollguard/cmd/tollguard").CombinedOutput()
	}
	if err != nil {
		buildErr = fmt.Errorf("building tollguard: %w\n%s", err, out)
	} else {
		tollguardBin = bin
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireBinary fails (under CI) or skips the test when the binary could
// not be built.
func requireBinary(t testing.TB) {
	t.Helper()
	if buildErr == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal(buildErr)
	}
	t.Skip(buildErr)
}
