package cli

import (
	"flag"

	"github.com/tollguard/tollguard/internal/api/client"
)

// clientFlags are the flags every client command takes to find the daemon.
type clientFlags struct {
	config, admin, tokenFile string
}

// addClientFlags declares -c, --admin and --token-file on fs.
func addClientFlags(fs *flag.FlagSet) *clientFlags {
	f := &clientFlags{}
	fs.StringVar(&f.config, "c", "", "the daemon's config `FILE` (admin.listen, data_dir); default /etc/tollguard/tollguard.yaml if it exists")
	fs.StringVar(&f.admin, "admin", "", "admin API `URL`, overriding the config (default http://127.0.0.1:9061)")
	fs.StringVar(&f.tokenFile, "token-file", "", "admin token `FILE`, overriding the config (default ./data/admin.token)")
	return f
}

// client resolves the daemon's address and token.
func (f *clientFlags) client(e *Env) (*client.Client, error) {
	return client.Resolve(client.Options{
		Config:        f.config,
		Admin:         f.admin,
		TokenFile:     f.tokenFile,
		DefaultConfig: e.DefaultConfig,
	})
}
