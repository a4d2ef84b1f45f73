// Package packaging tests the Debian package and the systemd unit: it
// builds the package with `make deb`, installs it with dpkg, verifies the
// unit with systemd-analyze, upgrades, removes and purges it, and checks
// the files and the system user at each step.
//
// It installs a real package, so it runs only when CI is set or
// TOLLGUARD_TEST_DEB=1, as root, on a machine where tollguard is not
// installed and no tollguard user exists; it purges what it installed.
package packaging

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
)

func need(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (Debian package %s; run scripts/install-test-deps.sh)", tool, pkg)
		}
		t.Skipf("%s not found (Debian package %s)", tool, pkg)
	}
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// run runs a command; dpkg waits (up to 10 minutes) while another dpkg or
// apt holds the package database lock.
func run(name string, args ...string) (string, error) {
	for i := 0; ; i++ {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil && name == "dpkg" && bytes.Contains(out, []byte("lock")) && i < 300 {
			time.Sleep(2 * time.Second)
			continue
		}
		return string(out), err
	}
}

// stat returns mode and owner names of path, failing if it is missing.
func stat(t *testing.T, path string) (fs.FileMode, string, string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	u, _ := user.LookupId(strconv.Itoa(int(st.Uid)))
	g, _ := user.LookupGroupId(strconv.Itoa(int(st.Gid)))
	var un, gn string
	if u != nil {
		un = u.Username
	}
	if g != nil {
		gn = g.Name
	}
	return fi.Mode(), un, gn
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func installed() bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "tollguard").Output()
	return err == nil && strings.Contains(string(out), "install ok installed")
}

func hasUser(name string) bool { _, err := user.Lookup(name); return err == nil }

const (
	unit = "/lib/systemd/system/tollguard.service"
	conf = "/etc/tollguard/tollguard.yaml"
	data = "/var/lib/tollguard"
	logs = "/var/log/tollguard"
	f2b  = "/etc/fail2ban/filter.d/tollguard.conf"
	bin  = "/usr/bin/tollguard"
)

func TestDebianPackage(t *testing.T) {
	if os.Getenv("CI") == "" && os.Getenv("TOLLGUARD_TEST_DEB") != "1" {
		t.Skip("installs a real package: set TOLLGUARD_TEST_DEB=1 (CI runs it)")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the package test needs root (dpkg -i)")
		}
		t.Skip("the package test needs root (dpkg -i)")
	}
	for _, tool := range [][2]string{{"dpkg-deb", "dpkg"}, {"make", "make"}, {"systemd-analyze", "systemd"}, {"adduser", "adduser"}} {
		need(t, tool[0], tool[1])
	}
	if installed() || hasUser("tollguard") || exists("/etc/tollguard") || exists(data) {
		t.Fatal("tollguard is already installed here (package, user or directories): not touching it")
	}
	t.Cleanup(func() {
		if installed() || exists("/var/lib/dpkg/info/tollguard.list") {
			run("dpkg", "--purge", "tollguard")
		}
	})

	dir := t.TempDir()
	out := sh(t, "make", "-C", "..", "deb", "DEB_DIR="+dir)
	debs, _ := filepath.Glob(filepath.Join(dir, "tollguard_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb made %v\n%s", debs, out)
	}
	deb := debs[0]
	contents := sh(t, "dpkg-deb", "-c", deb)
	for _, want := range []string{"./usr/bin/tollguard", "." + unit, "." + conf, "." + f2b, "./usr/share/doc/tollguard/examples/grafana/tollguard.json"} {
		if !strings.Contains(contents, want+"\n") {
			t.Errorf("package lacks %s:\n%s", want, contents)
		}
	}
	if cf := sh(t, "dpkg-deb", "-f", deb, "Package", "Depends"); !strings.Contains(cf, "Package: tollguard") || !strings.Contains(cf, "adduser") {
		t.Errorf("control: %s", cf)
	}

	// Install.
	sh(t, "dpkg", "-i", deb)
	if !installed() {
		t.Fatal("not installed after dpkg -i")
	}
	if v := sh(t, bin, "version"); !strings.Contains(v, "tollguard") {
		t.Errorf("tollguard version: %q", v)
	}
	u, err := user.Lookup("tollguard")
	if err != nil {
		t.Fatal("no tollguard user after install")
	}
	if uid, _ := strconv.Atoi(u.Uid); uid == 0 || uid >= 1000 || u.HomeDir != data {
		t.Errorf("user tollguard: uid %s home %s; want a system user at %s", u.Uid, u.HomeDir, data)
	}
	if pw := sh(t, "getent", "passwd", "tollguard"); !strings.HasSuffix(strings.TrimSpace(pw), ":/usr/sbin/nologin") {
		t.Errorf("tollguard can log in: %s", pw)
	}
	for _, c := range []struct {
		path       string
		mode       fs.FileMode
		owner, grp string
	}{
		{data, fs.ModeDir | 0o700, "tollguard", "tollguard"},
		{logs, fs.ModeDir | 0o750, "tollguard", "adm"},
		{conf, 0o640, "root", "tollguard"},
		{bin, 0o755, "root", "root"},
		{unit, 0o644, "root", "root"},
		{f2b, 0o644, "root", "root"},
	} {
		if m, o, g := stat(t, c.path); m != c.mode || o != c.owner || g != c.grp {
			t.Errorf("%s: %v %s:%s, want %v %s:%s", c.path, m, o, g, c.mode, c.owner, c.grp)
		}
	}
	cfg, err := config.Load(conf)
	if err != nil {
		t.Fatalf("installed config does not load: %v", err)
	}
	if cfg.DataDir != data {
		t.Errorf("installed config has data_dir %q, want %s", cfg.DataDir, data)
	}
	if cf := sh(t, "dpkg-query", "-W", "-f=${Conffiles}", "tollguard"); !strings.Contains(cf, conf) || !strings.Contains(cf, f2b) {
		t.Errorf("conffiles: %s", cf)
	}

	// The unit as systemd reads it.
	verify := exec.Command("systemd-analyze", "verify", unit)
	vout, err := verify.CombinedOutput()
	if err != nil || bytes.Contains(vout, []byte("tollguard.service:")) {
		t.Errorf("systemd-analyze verify: %v\n%s", err, vout)
	}
	unitText, _ := os.ReadFile(unit)
	for _, want := range []string{"CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_ADMIN\n", "NoNewPrivileges=yes\n",
		"ProtectSystem=strict\n", "ReadWritePaths=/var/lib/tollguard /var/log/tollguard\n", "User=tollguard\n",
		"ExecReload=/bin/kill -HUP $MAINPID\n", "Restart=on-failure\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK\n"} {
		if !bytes.Contains(unitText, []byte(want)) {
			t.Errorf("unit lacks %q", want)
		}
	}

	// Upgrade to a newer version: the edited config and the data stay.
	edited := sh(t, "cat", conf) + "\n# edited by the operator\n"
	if err := os.WriteFile(conf, []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(data, "tollguard.db")
	if err := os.WriteFile(marker, []byte("events"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := filepath.Join(dir, "up")
	sh(t, "dpkg-deb", "-R", deb, up)
	control := filepath.Join(up, "DEBIAN", "control")
	ctl, _ := os.ReadFile(control)
	oldVer := strings.TrimSpace(sh(t, "dpkg-deb", "-f", deb, "Version"))
	os.WriteFile(control, bytes.Replace(ctl, []byte("Version: "+oldVer), []byte("Version: "+oldVer+"+1"), 1), 0o644)
	newDeb := filepath.Join(dir, "tollguard_new.deb")
	sh(t, "dpkg-deb", "--root-owner-group", "--build", up, newDeb)
	sh(t, "dpkg", "-i", newDeb)
	if v := sh(t, "dpkg-query", "-W", "-f=${Version}", "tollguard"); v != oldVer+"+1" {
		t.Errorf("after upgrade version %q", v)
	}
	if got, _ := os.ReadFile(conf); string(got) != edited {
		t.Error("upgrade replaced the operator's config")
	}
	if got, err := os.ReadFile(marker); err != nil || string(got) != "events" {
		t.Errorf("upgrade lost the data: %v", err)
	}
	if m, o, _ := stat(t, data); m != fs.ModeDir|0o700 || o != "tollguard" {
		t.Errorf("after upgrade %s is %v %s", data, m, o)
	}

	// Remove: the program goes, config, data and user stay.
	sh(t, "dpkg", "-r", "tollguard")
	for _, p := range []string{bin, unit} {
		if exists(p) {
			t.Errorf("%s still there after dpkg -r", p)
		}
	}
	for _, p := range []string{conf, marker} {
		if !exists(p) {
			t.Errorf("%s gone after dpkg -r (kept until purge)", p)
		}
	}
	if !hasUser("tollguard") {
		t.Error("user gone after dpkg -r (kept until purge)")
	}

	// Purge: nothing is left.
	sh(t, "dpkg", "--purge", "tollguard")
	for _, p := range []string{"/etc/tollguard", data, logs, f2b, bin, unit} {
		if exists(p) {
			t.Errorf("%s still there after purge", p)
		}
	}
	if hasUser("tollguard") {
		t.Error("user tollguard still there after purge")
	}
	if _, err := user.LookupGroup("tollguard"); err == nil {
		t.Error("group tollguard still there after purge")
	}
	if st := sh(t, "sh", "-c", "dpkg-query -W -f='${db:Status-Status}' tollguard 2>/dev/null || true"); st != "" && st != "not-installed" {
		t.Errorf("dpkg status after purge: %q", st)
	}
}
