package cli

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version, set at build time with
// -ldflags "-X github.com/tollguard/tollguard/internal/cli.Version=v1.2.3".
// The default "dev" marks a build from a source tree.
var Version = "dev"

// VersionInfo is what `tollguard version --json` prints.
type VersionInfo struct {
	Version  string `json:"version"`
	Go       string `json:"go"`
	Revision string `json:"revision,omitempty"`
	Modified bool   `json:"modified,omitempty"`
}

// buildVersion collects the version and what the Go toolchain recorded.
func buildVersion() VersionInfo {
	v := VersionInfo{Version: Version, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
		if v.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
	}
	return v
}

// runVersion is `tollguard version [--json]`.
func runVersion(_ context.Context, e *Env, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print as JSON")
	if err := e.ParseNoArgs(fs, args); err != nil {
		return err
	}
	v := buildVersion()
	if *asJSON {
		return writeJSON(e.Stdout, v)
	}
	line := "tollguard " + v.Version + " (" + v.Go
	if v.Revision != "" {
		rev := v.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		line += ", rev " + rev
		if v.Modified {
			line += "+modified"
		}
	}
	fmt.Fprintln(e.Stdout, line+")")
	return nil
}
