// Package config holds tollguard's one configuration struct: strict YAML
// loading (unknown keys are errors), documented defaults, and validation whose
// errors name the file and line. A config is validated whole before it is
// used, so a bad file never half-applies.
package config

import (
	"net/netip"
	"time"

	"github.com/tollguard/tollguard/internal/engine/anomaly"
)

// Config is the whole configuration. Every field has a default (Default);
// examples/tollguard.yaml documents each key.
type Config struct {
	// DataDir holds the store, the admin token and the signing key.
	DataDir string `yaml:"data_dir"`
	// Log configures the daemon's own log.
	Log Log `yaml:"log"`
	// SIP configures the inline proxy.
	SIP SIP `yaml:"sip"`
	// Admin configures the admin HTTP API.
	Admin Admin `yaml:"admin"`
	// Store configures the event store.
	Store Store `yaml:"store"`
	// Allow lists CIDRs that are never banned.
	Allow []Prefix `yaml:"allow"`
	// Deny lists CIDRs that are always dropped.
	Deny []Prefix `yaml:"deny"`
	// Jail is the registration/auth-failure jail (mod_cti register_failure).
	Jail Jail `yaml:"jail"`
	// Enumeration bans one source failing on many accounts.
	Enumeration Enumeration `yaml:"enumeration"`
	// Distributed detects one account failing from many sources.
	Distributed Distributed `yaml:"distributed"`
	// Fingerprints configures scanner recognition.
	Fingerprints Fingerprints `yaml:"fingerprints"`
	// Flood limits the request rate per source.
	Flood Flood `yaml:"flood"`
	// Greylist holds a stranger's first UDP request until it retransmits.
	Greylist Greylist `yaml:"greylist"`
	// Honeypot lists accounts no legitimate device uses.
	Honeypot Honeypot `yaml:"honeypot"`
	// Probe bans sources of unauthenticated toll-fraud probes.
	Probe Probe `yaml:"probe"`
	// Unproven limits bans of sources whose address is not proven.
	Unproven Unproven `yaml:"unproven"`
	// Anomaly scores each call attempt against the account's learnt
	// normal (engine/anomaly).
	Anomaly Anomaly `yaml:"anomaly"`
	// PasswordPolicy is used by the configuration audit.
	PasswordPolicy PasswordPolicy `yaml:"password_policy"`
	// FreeSWITCH describes the protected FreeSWITCH: its Event Socket
	// (sidecar mode) and its configuration directory (audit).
	FreeSWITCH FreeSWITCH `yaml:"freeswitch"`
	// NFTables configures kernel bans.
	NFTables NFTables `yaml:"nftables"`
	// Sources lists log files to follow.
	Sources []LogSource `yaml:"sources"`
	// Alerts configures alert channels and which alerts go where.
	Alerts Alerts `yaml:"alerts"`
	// UI configures the web console.
	UI UI `yaml:"ui"`
	// CallPolicy holds the call rules.
	CallPolicy CallPolicy `yaml:"call_policy"`
	// Lockdown is the emergency switch's allowlist.
	Lockdown Lockdown `yaml:"lockdown"`
	// CallTokens lists accounts that need a one-time code per call.
	CallTokens CallTokens `yaml:"call_tokens"`
	// Media is the media (SRTP) policy.
	Media Media `yaml:"media"`
	// Cluster shares bans and failure counts with other guard nodes.
	Cluster Cluster `yaml:"cluster"`
	// Intel configures threat-intelligence feeds in and ban feeds out.
	Intel Intel `yaml:"intel"`
}

// Log configures the daemon's log.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
	// Fail2banFile, when set, receives one line per auth failure and ban in
	// the format the shipped fail2ban filter matches.
	Fail2banFile string `yaml:"fail2ban_file"`
	// Fail2banJail, when set, names the fail2ban jail that reads
	// Fail2banFile: an operator's unban of an address also runs
	// `fail2ban-client set JAIL unbanip ADDR`.
	Fail2banJail string `yaml:"fail2ban_jail"`
}

// SIP configures the inline proxy.
type SIP struct {
	// Listen lists listener URLs: udp://, tcp://, tls://host:port.
	Listen []string `yaml:"listen"`
	// Upstream is the PBX: udp:// or tcp://host:port.
	Upstream string `yaml:"upstream"`
	// Advertise is the address put in Via and Record-Route when a listener
	// binds a wildcard address. Default: the listener's address, or the
	// address of the interface that routes to the upstream.
	Advertise string `yaml:"advertise"`
	// TLS configures the tls:// listeners.
	TLS TLS `yaml:"tls"`
	// BannedResponse is drop (silent, default) or reject (403).
	BannedResponse string `yaml:"banned_response"`
	// UpstreamTimeout is how long a request may wait for the PBX before the
	// guard answers 503. Default 2s.
	UpstreamTimeout Duration `yaml:"upstream_timeout"`
	// MaxMessageSize bounds accepted SIP messages. Default 65535.
	MaxMessageSize int `yaml:"max_message_size"`
	// StripHeaders are removed from every request from outside (any letter
	// case, compact forms too): identity headers a PBX may trust from its
	// proxy. X-AUTH-IP and X-AUTH-PORT are always removed.
	StripHeaders []string `yaml:"strip_headers"`
	// MaxConnections bounds TCP and TLS connections in all. Default 16384.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerSource bounds the connections of one IPv4 address or
	// IPv6 /64. Default 64.
	MaxConnectionsPerSource int `yaml:"max_connections_per_source"`
	// FirstMessageTimeout is how long a new connection has for its TLS
	// handshake and first complete message. Default 5s.
	FirstMessageTimeout Duration `yaml:"first_message_timeout"`
	// UnregisteredIdleTimeout closes a connection no REGISTER succeeded on
	// this long after its last complete message. Default 30s.
	UnregisteredIdleTimeout Duration `yaml:"unregistered_idle_timeout"`
	// RegisteredIdleTimeout closes a registered phone's connection this long
	// after its last byte (keep-alives count). Default 10m.
	RegisteredIdleTimeout Duration `yaml:"registered_idle_timeout"`
	// DialogTimeout forgets an answered call that saw no BYE this long
	// after its answer (a lost BYE, a crashed phone), so it can no longer
	// be listed or hung up. Default 12h.
	DialogTimeout Duration `yaml:"dialog_timeout"`
	// AllowSources, when not empty, are the only sources that may use
	// Listen (the default route). Default empty: anyone.
	AllowSources []Prefix `yaml:"allow_sources"`
	// DenySources may never use Listen (e.g. the trunks' addresses on the
	// phones' listeners). Default empty.
	DenySources []Prefix `yaml:"deny_sources"`
	// Routes are further listeners bound each to their own upstream, one
	// per FreeSWITCH profile. Default empty: Listen and Upstream only.
	Routes []SIPRoute `yaml:"routes"`
	// WSOrigins lists the browser origins whose pages may open a ws:// or
	// wss:// connection ("*": any). A client without an Origin header and
	// a page on the guard's own host are always allowed. Default empty.
	WSOrigins []string `yaml:"ws_origins"`
}

// SIPRoute binds listeners to one upstream (one FreeSWITCH profile).
type SIPRoute struct {
	// Name labels the route in logs and metrics: a-z, 0-9, _ and -.
	Name string `yaml:"name"`
	// Listen lists the route's listener URLs, as sip.listen.
	Listen []string `yaml:"listen"`
	// Upstream is the route's PBX socket, as sip.upstream.
	Upstream string `yaml:"upstream"`
	// AllowSources, when not empty, are the only sources that may use the
	// route (a trunk profile: the carriers). Empty: anyone.
	AllowSources []Prefix `yaml:"allow_sources"`
	// DenySources may never use the route.
	DenySources []Prefix `yaml:"deny_sources"`
}

// TLS configures TLS listeners.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// ClientCA set turns on mutual TLS: a client without a certificate
	// signed by this CA cannot complete the handshake.
	ClientCA string `yaml:"client_ca"`
}

// Admin configures the admin API.
type Admin struct {
	// Listen is host:port. Default 127.0.0.1:9061.
	Listen string `yaml:"listen"`
}

// Store configures the event store.
type Store struct {
	// Driver is sqlite (default) or postgres.
	Driver string `yaml:"driver"`
	// DSN is the database; for sqlite the default is <data_dir>/tollguard.db.
	DSN string `yaml:"dsn"`
	// Retention is how long events are kept. Default 180d.
	Retention Duration `yaml:"retention"`
	// Checkpoint is how often a signed checkpoint is written. Default 1m.
	Checkpoint Duration `yaml:"checkpoint"`
	// FlushInterval bounds how long an event waits in the write batch.
	// Default 100ms.
	FlushInterval Duration `yaml:"flush_interval"`
	// BackupDir is the only directory backups are written to; the default
	// (empty) is <data_dir>/backups.
	BackupDir string `yaml:"backup_dir"`
	// NodeKeys pins the checkpoint public key of each node writing to a
	// shared store, so `tollguard log verify` does not have to trust the
	// keys the nodes stored in the database (trust on first use). Default
	// none.
	NodeKeys []NodeKey `yaml:"node_keys"`
}

// NodeKey is one pinned checkpoint key: the node's name (cluster.node)
// and its ed25519 public key, base64, as `tollguard log verify` prints it.
type NodeKey struct {
	Node      string `yaml:"node"`
	PublicKey string `yaml:"public_key"`
}

// JailRule is one register_failure entry. Its UnmarshalYAML also accepts
// mod_cti's form (integer seconds, banmode 0/1) and normalises it.
type JailRule struct {
	FindTime Duration `yaml:"findtime"`
	MaxRetry int      `yaml:"maxretry"`
	// BanMode is ip or ip_account (mod_cti's 0 and 1 are read as these).
	BanMode string   `yaml:"banmode"`
	BanTime Duration `yaml:"bantime"`
}

// Jail is the auth-failure jail.
type Jail struct {
	RegisterFailure []JailRule `yaml:"register_failure"`
	// Factor multiplies bantime for each repeat ban of the same key.
	// Default 2.
	Factor float64 `yaml:"factor"`
	// MaxTime caps a repeat offender's ban. Default 24h.
	MaxTime Duration `yaml:"maxtime"`
}

// Enumeration bans a source that fails on many distinct accounts.
type Enumeration struct {
	FindTime    Duration `yaml:"findtime"`
	MaxAccounts int      `yaml:"max_accounts"`
	BanTime     Duration `yaml:"bantime"`
	// SweepTargets bans a source that names this many distinct users it
	// never proved, without credentials, within findtime (0: off).
	// Default 8.
	SweepTargets int `yaml:"sweep_targets"`
}

// Distributed detects one account failing from many sources.
type Distributed struct {
	FindTime   Duration `yaml:"findtime"`
	MaxSources int      `yaml:"max_sources"`
	// LockTime is how long the account stays locked.
	LockTime Duration `yaml:"locktime"`
	// NewSources is how many addresses new to a locked account may try
	// per findtime (a slot is taken at the first request and given back
	// on a registration); each is banned for the account at its first
	// failure. Default 5.
	NewSources int `yaml:"new_sources"`
	// Remember is how far back the addresses each account registered from
	// are reloaded from the store at start. Default 30d.
	Remember Duration `yaml:"remember"`
}

// Fingerprints configures scanner recognition.
type Fingerprints struct {
	// File replaces the embedded fingerprint list when set.
	File string `yaml:"file"`
	// Threshold is the score at which weak marks ban. Default 100.
	Threshold int `yaml:"threshold"`
	// BanTime for a scanner ban. Default 24h.
	BanTime Duration `yaml:"bantime"`
}

// Flood limits the request rate per source.
type Flood struct {
	// Window and Limit: more than Limit requests in Window bans.
	Window Duration `yaml:"window"`
	Limit  int      `yaml:"limit"`
	// StrangerLimit applies to a source that never authenticated (no
	// registration, no answered credentialed call): its requests past
	// StrangerLimit in Window are dropped (no ban) until it authenticates
	// or its rate falls; past Limit it is banned like any source. Default
	// 30; a value above Limit acts as Limit.
	StrangerLimit int `yaml:"stranger_limit"`
	// IPv6Prefix groups IPv6 sources. Default 64.
	IPv6Prefix int      `yaml:"ipv6_prefix"`
	BanTime    Duration `yaml:"bantime"`
	// MaxSources bounds the tracked sources. Default 1048576.
	MaxSources int `yaml:"max_sources"`
}

// Greylist holds the first UDP request of a source that is a stranger
// (not in allow, never registered, no answered credentialed call, not
// passed before) until its client retransmits it, as RFC 3261 §17.1.1.2
// and §17.1.2.2 require of every UDP client transaction and attack tools
// do not do. The retransmission, between MinDelay and MaxDelay after the
// first copy, is forwarded and the address passes for Remember.
type Greylist struct {
	// Enabled turns greylisting on. Default true: RFC 3261 UDP clients
	// retransmit, attack tools do not; the cost is one T1 (about 0.5 s)
	// on a phone's first request from a new address.
	Enabled bool `yaml:"enabled"`
	// MinDelay: a copy sooner than this after the first is a duplicate,
	// not a retransmission timer, and is held too. Default 200ms.
	MinDelay Duration `yaml:"min_delay"`
	// MaxDelay: a copy later than this starts over (64·T1). Default 32s.
	MaxDelay Duration `yaml:"max_delay"`
	// Remember is how long a passed address passes at once after its last
	// request. Default 24h.
	Remember Duration `yaml:"remember"`
	// MaxSources bounds the tracked addresses (IPv4 addresses, IPv6
	// prefixes of flood.ipv6_prefix); memory is about 100 bytes each.
	// Default 65536.
	MaxSources int `yaml:"max_sources"`
}

// Honeypot lists accounts no legitimate device uses.
type Honeypot struct {
	Accounts []string `yaml:"accounts"`
	BanTime  Duration `yaml:"bantime"`
}

// Probe bans a source that sends unauthenticated INVITEs (from an address
// that never registered) that the PBX refuses or that dial Destinations.
type Probe struct {
	FindTime  Duration `yaml:"findtime"`
	MaxProbes int      `yaml:"max_probes"`
	BanTime   Duration `yaml:"bantime"`
	// Destinations are regular expressions of dialled numbers (the
	// Request-URI user) that make an unauthenticated INVITE a probe:
	// international and premium-rate patterns.
	Destinations []string `yaml:"destinations"`
}

// Unproven limits bans of a source whose address is not proven: a UDP
// datagram's source can be forged. Such bans are inline only (never
// written to the fail2ban log or the kernel) and last at most MaxTime.
type Unproven struct {
	MaxTime Duration `yaml:"maxtime"`
}

// Anomaly mirrors engine/anomaly.Config with durations that accept days
// ("28d"); Model converts it, and the package's Config.Validate is its
// validation.
type Anomaly struct {
	// Mode is shadow (score and flag only) or enforce (reject at Block).
	Mode string `yaml:"mode"`
	// Warn is the score at which a call attempt is flagged; Block the
	// score at which enforce rejects it.
	Warn  float64 `yaml:"warn"`
	Block float64 `yaml:"block"`
	// Window is the history the baseline learns from; Retrain how often
	// the daemon rebuilds the model.
	Window  Duration `yaml:"window"`
	Retrain Duration `yaml:"retrain"`
	// Trees, Sample and Seed shape the Isolation Forest.
	Trees  int    `yaml:"trees"`
	Sample int    `yaml:"sample"`
	Seed   uint64 `yaml:"seed"`
	// MaxAccounts bounds the accounts with a baseline.
	MaxAccounts int `yaml:"max_accounts"`
	// Country is the PBX's own country (ISO 3166, "GB"); empty means US.
	Country string `yaml:"country"`
	// Timezone is the zone of the hour-of-week profiles.
	Timezone string `yaml:"timezone"`
}

// Model returns a as the anomaly package's Config.
func (a Anomaly) Model() anomaly.Config {
	return anomaly.Config{Mode: a.Mode, Warn: a.Warn, Block: a.Block, Window: a.Window.D(), Retrain: a.Retrain.D(),
		Trees: a.Trees, Sample: a.Sample, Seed: a.Seed, MaxAccounts: a.MaxAccounts, Country: a.Country, Timezone: a.Timezone}
}

// PasswordPolicy is the minimum password quality the configuration audit
// holds directory passwords to, as mod_cti defines it.
type PasswordPolicy struct {
	// Minimum is the shortest acceptable length. Default 6.
	Minimum int `yaml:"minimum"`
	// Strength is how many of the four classes (digits, lower case, upper
	// case, other characters) a password must mix: 0 (no requirement) to 4.
	// Default 3.
	Strength int `yaml:"strength"`
}

// FreeSWITCH describes the FreeSWITCH the guard protects: the inbound
// Event Socket connection (sidecar mode) and its configuration directory.
type FreeSWITCH struct {
	// ConfDir is FreeSWITCH's configuration directory (the one holding
	// freeswitch.xml or vars.xml). When set, `tollguard serve --strict`
	// audits it and refuses to start on a finding of severity high or
	// above. Default empty: no audit at start.
	ConfDir string `yaml:"conf_dir"`
	// ESL is the Event Socket's host:port (FreeSWITCH listens on
	// 127.0.0.1:8021 by default). Empty: no Event Socket connection.
	ESL string `yaml:"esl"`
	// Password is the Event Socket password (FreeSWITCH's default is
	// ClueCon). Mutually exclusive with PasswordFile.
	Password string `yaml:"password"`
	// PasswordFile holds the password on its first line.
	PasswordFile string `yaml:"password_file"`
}

// NFTables configures kernel bans.
type NFTables struct {
	// Enabled turns kernel bans on. Default false.
	Enabled bool `yaml:"enabled"`
	// Table is the inet table tollguard owns. Default tollguard.
	Table string `yaml:"table"`
}

// LogSource is one followed log file.
type LogSource struct {
	// Type is freeswitch_log, mod_cti_fail2ban or asterisk_security.
	Type string `yaml:"type"`
	// Path is the file.
	Path string `yaml:"path"`
}

// Duration is a time.Duration that also accepts a "d" (day) suffix in YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Prefix is a CIDR or a single address in YAML.
type Prefix netip.Prefix

// P returns p as a netip.Prefix.
func (p Prefix) P() netip.Prefix { return netip.Prefix(p) }

// Prefixes converts a list.
func Prefixes(ps []Prefix) []netip.Prefix {
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		out[i] = p.P()
	}
	return out
}
