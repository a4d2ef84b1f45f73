package cluster

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestNewClientURLs(t *testing.T) {
	cases := []struct {
		name, url string
		want      string // client type, or "" for an error
	}{
		{"plain", "redis://127.0.0.1:6379/0", "*redis.Client"},
		{"tls", "rediss://user:pw@redis.example:6380", "*redis.Client"},
		{"unix socket", "unix:///run/redis/redis.sock?db=1", "*redis.Client"},
		{"sentinel", "redis+sentinel://10.0.0.1:26379/0?master_name=mymaster&addr=10.0.0.2:26379", "*redis.Client"},
		{"sentinel over tls", "rediss+sentinel://10.0.0.1:26379?master_name=mymaster", "*redis.Client"},
		{"sentinel without master", "redis+sentinel://10.0.0.1:26379", ""},
		{"cluster", "redis+cluster://10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000", "*redis.ClusterClient"},
		{"cluster with one seed", "redis+cluster://10.0.0.1:7000", "*redis.ClusterClient"},
		{"unknown scheme", "http://10.0.0.1:6379", ""},
		{"unknown option", "redis://10.0.0.1:6379?frobnicate=1", ""},
		{"not a url", "redis://[::1", ""},
		{"cluster over unix", "unix+cluster:///x.sock", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl, err := NewClient(c.url)
			if c.want == "" {
				if err == nil {
					cl.Close()
					t.Fatalf("NewClient(%q) accepted", c.url)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewClient(%q): %v", c.url, err)
			}
			defer cl.Close()
			got := ""
			switch cl.(type) {
			case *redis.Client:
				got = "*redis.Client"
			case *redis.ClusterClient:
				got = "*redis.ClusterClient"
			}
			if got != c.want {
				t.Fatalf("NewClient(%q) = %T, want %s", c.url, cl, c.want)
			}
		})
	}
}

func TestErrorsHideThePassword(t *testing.T) {
	_, err := NewClient("redis://user:s3cr3tpass@10.0.0.1:6379?frobnicate=1")
	if err == nil || strings.Contains(err.Error(), "s3cr3tpass") {
		t.Fatalf("error %v (must exist and not contain the password)", err)
	}
	err = Config{Redis: "redis://:s3cr3tpass@10.0.0.1:6379/x", Node: "a"}.Validate()
	if err == nil || strings.Contains(err.Error(), "s3cr3tpass") {
		t.Fatalf("Validate error %v (must exist and not contain the password)", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		c    Config
		ok   bool
	}{
		{"off", Config{}, true},
		{"on", Config{Redis: "redis://127.0.0.1:6379", Node: "guard-1"}, true},
		{"no node name: the host name", Config{Redis: "redis://127.0.0.1:6379"}, true},
		{"bad node name", Config{Redis: "redis://127.0.0.1:6379", Node: "a b"}, false},
		{"bad prefix", Config{Redis: "redis://127.0.0.1:6379", Node: "a", KeyPrefix: "{x}"}, false},
		{"negative pending", Config{Redis: "redis://127.0.0.1:6379", Node: "a", PendingMax: -1}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.c.Validate(); (err == nil) != c.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", c.c, err, c.ok)
			}
		})
	}
}
