package cli

// builtin is the command table: every command the cli package implements,
// in the order `tollguard help` lists them. serve and demo are added by
// main through Main's extra commands.
func builtin() []Command {
	return []Command{
		{Name: "bans", Args: "[--json]", Summary: "jail settings, failure history and active bans (like `cti show baninfo`)", Run: runBans},
		{Name: "ban", Args: "IP [--account A] [--for D] [--reason R] [--json]", Summary: "ban an address, or one account from it", Run: runBan},
		{Name: "unban", Args: "IP [ACCOUNT] [--json]", Summary: "lift the bans on an address (only ACCOUNT's, when given)", Run: runUnban},
		{Name: "events", Args: "[--ip IP] [--account A] [--call-id C] [--kind K,...] [--since D] [--until D] [--limit N] [--unmask] [--json|--csv]", Summary: "recorded events, newest first (phone numbers masked unless --unmask)", Run: runEvents},
		{Name: "investigate", Args: "[--since 24h] [--unmask] [--json]", Summary: "incident report: attackers, targeted and compromised accounts, expensive calls, timeline", Run: runInvestigate},
		{Name: "calls", Args: "[--unmask] [--json]", Summary: "running calls through the inline proxy, or FreeSWITCH's channels beside it (phone numbers masked unless --unmask)", Run: runCalls},
		{Name: "hangup", Args: "CALL-ID [--json]", Summary: "end a running call: BYE to both sides (inline) or uuid_kill (beside FreeSWITCH)", Run: runHangup},
		{Name: "lockdown", Args: "on|off|status [--hangup] [--json]", Summary: "emergency lockdown: only lockdown.allow_accounts may place calls; --hangup also ends the others' running calls", Run: runLockdown},
		{Name: "token", Args: "new ACCOUNT [--json]", Summary: "create a one-time call token (TOTP) secret for ACCOUNT and print it with its otpauth:// URI", Run: runToken},
		{Name: "log", Args: "verify [-c FILE] [--json]", Summary: "check the event log's hash chain and signed checkpoints; exits 1 when broken", Run: runLog},
		{Name: "backup", Args: "NAME", Summary: "have the daemon write a consistent 0600 copy of its SQLite store to the new file NAME in its backup directory (store.backup_dir, default <data_dir>/backups); NAME is a file name, not a path", Run: runBackup},
		{Name: "audit", Args: "freeswitch [DIR] [--json] [--fail-on SEVERITY] [-c FILE]", Summary: "audit a FreeSWITCH configuration directory for toll-fraud holes; exits 1 on a finding at or above --fail-on (default high)", Run: runAudit},
		{Name: "anomaly", Args: "evaluate --train FILE --test FILE [--json] [--threshold S] [--warn S] [--block S] [--window D] [--country CC] [--seed N] [--save-model FILE] [--show N]", Summary: "train the anomaly detector on one event file, score another; with fraud labels, precision, recall and calls until detection", Run: runAnomaly},
		{Name: "simulate", Args: "--scenario standard|short [--json] [--unprotected] [--target T] | --target udp://127.0.0.1:5060 [--phones N] [--typos N] [--attackers scanner,cracker,enumerator,flooder] [--duration D]", Summary: "the protection report (every scenario against an embedded guard), or phones and attackers at a loopback target", Run: runSimulate},
		{Name: "alert", Args: "test CHANNEL [-c FILE]", Summary: "send a test message to an alert channel from the config, without the daemon", Run: runAlert},
		{Name: "user", Args: "add NAME --role viewer|operator|admin [--password-stdin] | list [--json] | del NAME | reset-mfa NAME [-c FILE]", Summary: "console accounts (password + TOTP or security key) in <data_dir>/users.json; the running daemon sees changes at once", Run: runUser},
		{Name: "version", Args: "[--json]", Summary: "print the version", Run: runVersion},
	}
}
