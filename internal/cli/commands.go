package cli

// builtin is the command table: every command the cli package implements,
// in the order `tollguard help` lists them. serve and demo are added by
// main through Main's extra commands.
func builtin() []Command {
	return []Command{
		{Name: "bans", Args: "[--json]", Summary: "jail settings, failure history and active bans (like `cti show baninfo`)", Run: runBans},
		{Name: "ban", Args: "IP [--account A] [--for D] [--reason R] [--json]", Summary: "ban an address, or one account from it", Run: runBan},
		{Name: "unban", Args: "IP [ACCOUNT] [--json]", Summary: "lift the bans on an address (only ACCOUNT's, when given)", Run: runUnban},
		{Name: "version", Args: "[--json]", Summary: "print the version", Run: runVersion},
	}
}
