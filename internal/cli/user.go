package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/tollguard/tollguard/internal/users"
)

// runUser is `tollguard user add|list|del|reset-mfa` (reset-mfa also
// removes the user's security keys; list counts them). It edits
// <data_dir>/users.json directly, under the file's lock, like the daemon
// does: the running daemon notices the change at the next login or page
// request (a deleted user's or a reset user's sessions end there). The
// first admin has to be created before anyone can log in, so this cannot
// go through the console; it needs the same access to the data dir as the
// admin token does.
func runUser(ctx context.Context, e *Env, args []string) error {
	fs := flag.NewFlagSet("user", flag.ContinueOnError)
	cfgPath := fs.String("c", "", "the daemon's config `FILE` (data_dir); default /etc/tollguard/tollguard.yaml if it exists")
	role := fs.String("role", "", "with add: the user's `ROLE`: viewer (read only, numbers masked), operator (also ban, unban, unmask) or admin")
	pwStdin := fs.Bool("password-stdin", false, "with add: read the password from the first line of standard input instead of prompting")
	asJSON := fs.Bool("json", false, "with list: print JSON")
	pos, err := e.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("say add, list, del or reset-mfa")
	}
	cfg, err := loadConfig(*cfgPath, e.DefaultConfig)
	if err != nil {
		return err
	}
	f := users.Open(cfg.DataDir)
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	name := func() (string, error) {
		if len(pos) != 2 {
			return "", usagef("user %s takes one NAME", pos[0])
		}
		return pos[1], users.CheckName(pos[1])
	}
	switch pos[0] {
	case "add":
		n, err := name()
		if err != nil {
			return err
		}
		r, err := users.ParseRole(*role)
		if err != nil {
			return usagef("--role: %v", err)
		}
		pw, err := readPassword(e, *pwStdin)
		if err != nil {
			return err
		}
		u, err := f.Add(n, r, pw, now())
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "added %s (%s) to %s\n", u.Name, u.Role, f.Path())
		return printEnrolment(e, u)
	case "list":
		if len(pos) != 1 {
			return usagef("user list takes no argument")
		}
		list, err := f.List()
		if err != nil {
			return err
		}
		type row struct {
			Name    string     `json:"name"`
			Role    users.Role `json:"role"`
			Keys    int        `json:"keys"` // security keys and passkeys
			Created time.Time  `json:"created"`
		}
		rows := make([]row, 0, len(list))
		for _, u := range list {
			rows = append(rows, row{u.Name, u.Role, len(u.Keys), u.Created})
		}
		if *asJSON {
			return writeJSON(e.Stdout, rows)
		}
		t := newTable(e.Stdout, "NAME", "ROLE", "KEYS", "CREATED")
		for _, r := range rows {
			t.Row(r.Name, string(r.Role), strconv.Itoa(r.Keys), fmtTime(r.Created, e.Loc))
		}
		return t.Flush()
	case "del":
		n, err := name()
		if err != nil {
			return err
		}
		if err := f.Delete(n); err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "deleted %s; their console sessions end at their next request\n", n)
		return nil
	case "reset-mfa":
		n, err := name()
		if err != nil {
			return err
		}
		old, err := f.Get(n)
		if err != nil {
			return err
		}
		u, err := f.ResetMFA(n, now())
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "new TOTP secret for %s, %d security key(s) removed; the old authenticator entry and keys no longer work and their sessions end\n", u.Name, len(old.Keys))
		return printEnrolment(e, u)
	}
	return usagef("unknown user subcommand %q (add, list, del or reset-mfa)", capString(pos[0], 40))
}

// printEnrolment shows the otpauth:// URI and its QR code, once.
func printEnrolment(e *Env, u users.User) error {
	qr, err := users.TerminalQR(users.OTPAuthURI(u))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "\nScan this with an authenticator app (shown once; keep it secret):\n\n%s\n%s\n", qr, users.OTPAuthURI(u))
	return nil
}

// readPassword reads the new password from stdin's first line, or prompts
// twice on the terminal without echo.
func readPassword(e *Env, fromStdin bool) (string, error) {
	in := e.Stdin
	if in == nil {
		in = strings.NewReader("")
	}
	if fromStdin {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the password from stdin: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", usagef("--password-stdin: standard input held no password")
		}
		return pw, nil
	}
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usagef("not a terminal: pass the password with --password-stdin")
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(e.Stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.Stderr)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		return string(b), nil
	}
	pw, err := ask("Password: ")
	if err != nil {
		return "", err
	}
	again, err := ask("Again: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the passwords differ")
	}
	return pw, nil
}
