// Package examples tests the files shipped for operators: the Prometheus
// rules (with the real promtool), the Grafana dashboard, and that every
// metric they query is one the daemon exports.
package examples

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/daemon"
	"github.com/tollguard/tollguard/internal/demo/pbx"
)

const (
	rulesFile     = "prometheus/tollguard.rules.yml"
	rulesTestFile = "prometheus/tollguard.rules.test.yml"
	dashboardFile = "grafana/tollguard.json"
)

// need returns the path of tool, failing under CI (the tool is a test
// dependency, scripts/install-test-deps.sh installs it) and skipping
// elsewhere.
func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found (Debian package %s; run scripts/install-test-deps.sh)", tool, pkg)
	}
	t.Skipf("%s not found (Debian package %s)", tool, pkg)
	return ""
}

func TestPrometheusRules(t *testing.T) {
	promtool := need(t, "promtool", "prometheus")
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

var metricName = regexp.MustCompile(`\btollguard_[a-z0-9_]+`)

// queried returns the tollguard metric names in the rules' expressions
// and the dashboard's queries.
func queried(t *testing.T) (rules, dashboard []string) {
	t.Helper()
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			rules = append(rules, metricName.FindAllString(r.Expr, -1)...)
		}
	}
	data, err = os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s does not parse: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) < 10 {
		t.Errorf("dashboard: title %q uid %q, %d panels", d.Title, d.UID, len(d.Panels))
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if !strings.Contains(q.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q ignores the guard selector: %s", p.Title, q.Expr)
			}
			dashboard = append(dashboard, metricName.FindAllString(q.Expr, -1)...)
		}
	}
	for _, v := range d.Templating.List {
		dashboard = append(dashboard, metricName.FindAllString(v.Definition, -1)...)
	}
	return rules, dashboard
}

// exported starts the real daemon on port 0 (in front of the demo PBX)
// and returns the metric names its /metrics lists; a histogram's
// _bucket, _sum and _count count as well.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	p, err := pbx.New(pbx.Options{Accounts: map[string]string{"1001": "Vx7#pR2qLm"}})
	if err != nil {
		t.Fatal(err)
	}
	go p.Run(ctx)
	<-p.Ready()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.SIP.Listen = []string{"udp://127.0.0.1:0"}
	cfg.SIP.Upstream = p.Target()
	cfg.Admin.Listen = "127.0.0.1:0"
	// A channel, so the alert metrics have series (nothing is sent: no
	// alert happens here).
	cfg.Alerts.Channels = []config.AlertChannel{{Name: "oncall", Type: "webhook", URL: "http://127.0.0.1:9/hook"}}
	g, err := daemon.New(ctx, cfg, daemon.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-g.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	url := "http://" + g.AdminAddr().String() + "/metrics"
	names := map[string]bool{}
	// Twice: the admin API's own series exist once it served a request.
	for range 2 {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
				names[f[2]] = true
				if f[3] == "histogram" || f[3] == "summary" {
					names[f[2]+"_bucket"], names[f[2]+"_sum"], names[f[2]+"_count"] = true, true, true
				}
			}
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return names
}

// Every metric the rules and the dashboard query is one tollguard exports.
func TestQueriedMetricsExist(t *testing.T) {
	rules, dashboard := queried(t)
	have := exported(t)
	if !have["tollguard_sipfw_requests_total"] {
		t.Fatalf("/metrics lacks the proxy's metrics: %v", have)
	}
	for what, names := range map[string][]string{rulesFile: rules, dashboardFile: dashboard} {
		slices.Sort(names)
		names = slices.Compact(names)
		if len(names) < 8 {
			t.Errorf("%s queries only %v", what, names)
		}
		for _, n := range names {
			if !have[n] {
				t.Errorf("%s queries %s, which tollguard does not export", what, n)
			}
		}
	}
}

// firstShellBlock returns the first ```sh block of a Markdown file.
func firstShellBlock(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "```sh\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatalf("%s has no ```sh block", path)
	}
	return block
}

// The Chinese README starts with the same two commands as the English one.
func TestChineseReadmeCommands(t *testing.T) {
	en, zh := firstShellBlock(t, "../README.md"), firstShellBlock(t, "../README.zh-CN.md")
	if en != zh || strings.Count(en, "\n") != 2 {
		t.Errorf("first commands differ:\nREADME.md:\n%s\nREADME.zh-CN.md:\n%s", en, zh)
	}
}
