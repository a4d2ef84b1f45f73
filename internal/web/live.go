package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/users"
)

// LiveBans is one "bans" message of the live stream: every ban in force.
type LiveBans struct {
	Now  time.Time           `json:"now"`
	Bans []decision.Decision `json:"bans"`
}

// maxLiveBans caps one message; the Bans page says when more are in force.
const maxLiveBans = 1000

// live is GET /ui/live, a server-sent event stream: a "bans" event with
// the bans in force at once and again whenever they change (checked every
// LivePoll), and a comment every 15 s to keep proxies from closing it. It
// ends when the session does.
func (c *Console) live(w http.ResponseWriter, r *http.Request, s users.Session) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ck, _ := r.Cookie(CookieName)
	tick := time.NewTicker(c.o.LivePoll)
	defer tick.Stop()
	last, sent, keep := "", false, time.Now()
	for {
		if _, err := c.sessions.Get(ck.Value, false); err != nil {
			fmt.Fprint(w, "event: logout\ndata: {}\n\n")
			rc.Flush()
			return
		}
		now := c.now()
		bans := c.o.Bans(now)
		sig := banSignature(bans)
		if !sent || sig != last {
			last, sent = sig, true
			msg := LiveBans{Now: now, Bans: bans[:min(len(bans), maxLiveBans)]}
			data, _ := json.Marshal(msg)
			// json.Marshal escapes newlines, so one data line holds it.
			if _, err := fmt.Fprintf(w, "event: bans\ndata: %s\n\n", data); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		} else if time.Since(keep) > 15*time.Second {
			keep = time.Now()
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-c.stop:
			return
		case <-tick.C:
		}
	}
}

// banSignature identifies a ban list's content, so unchanged lists are not
// sent again.
func banSignature(bans []decision.Decision) string {
	keys := make([]string, len(bans))
	for i, d := range bans {
		keys[i] = string(d.Scope) + "|" + d.Prefix.String() + "|" + d.Account + "|" + strconv.FormatInt(d.Until.UnixNano(), 10)
	}
	slices.Sort(keys)
	return strings.Join(keys, "\n")
}
