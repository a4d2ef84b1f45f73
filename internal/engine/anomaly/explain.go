package anomaly

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/tollguard/tollguard/internal/callpolicy/dest"
)

// explain returns the words for every feature beyond the training's 99th
// percentile, the furthest beyond first.
func (m *Model) explain(v Vector, c *Context) []string {
	type hit struct {
		f   Feature
		how float64
	}
	var hits []hit
	for f := range NumFeatures {
		if v[f] <= 0 || v[f] <= m.p99[f] {
			continue
		}
		spread := max(m.p99[f]-m.p50[f], 0.25)
		hits = append(hits, hit{f, (v[f] - m.p99[f]) / spread})
	}
	slices.SortStableFunc(hits, func(a, b hit) int {
		switch {
		case a.how > b.how:
			return -1
		case a.how < b.how:
			return 1
		}
		return 0
	})
	out := make([]string, 0, len(hits))
	for _, h := range hits {
		if s := reason(h.f, c); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// reason is one feature in words.
func reason(f Feature, c *Context) string {
	switch f {
	case FeatBurst:
		return fmt.Sprintf("%d calls in 10 min against a usual %s at this hour", c.Calls10m, rate(c.Usual1h/6))
	case FeatRate:
		return fmt.Sprintf("%d calls in the last hour against a usual %s at this hour", c.Calls1h, rate(c.Usual1h))
	case FeatQuietHour:
		return fmt.Sprintf("calling at %s %s, when this account usually makes %s calls an hour (%s on average)",
			c.Time.Weekday().String()[:3], c.Time.Format("15:04"), rate(c.Usual1h), rate(c.Mean1h))
	case FeatNewDest:
		switch {
		case c.NewCountry:
			if c.Dest.Classes.Has(dest.International) {
				return fmt.Sprintf("calls to %s never seen for this account (usually %s of its calls are international)", countryText(c), pct(c.UsualIntl))
			}
			return fmt.Sprintf("calls to %s never seen for this account", countryText(c))
		case c.NewRange:
			return fmt.Sprintf("calls to the range %s… never seen for this account", c.Range)
		}
	case FeatRisk:
		what := c.Dest.Classes.String()
		if what == "" {
			what = c.Dest.Type.String()
		}
		return fmt.Sprintf("%s destination %s, where usually %s of this account's calls go",
			what, countryText(c), pct(c.UsualRisk))
	case FeatIntlShare:
		return fmt.Sprintf("%d of the last %d calls international against a usual %s", c.IntlRecent, c.Recent, pct(c.UsualIntl))
	case FeatDistinct:
		return fmt.Sprintf("%d distinct destinations in the last hour against a usual %s", c.Distinct1h, rate(c.UsualDistinct))
	case FeatSequential:
		return fmt.Sprintf("%d numbers dialled in sequence, up to %s…", c.Sequential+1, c.Range)
	case FeatShortCalls:
		return fmt.Sprintf("%s of recent calls short or unanswered against a usual %s", pct(c.ShortShare), pct(c.UsualShort))
	case FeatNewAccess:
		switch {
		case c.NewSource.IsValid() && c.NewAgent != "":
			return fmt.Sprintf("new source network %s and new User-Agent %q for this account", c.NewSource, c.NewAgent)
		case c.NewSource.IsValid():
			return fmt.Sprintf("new source network %s for this account", c.NewSource)
		case c.NewAgent != "":
			return fmt.Sprintf("new User-Agent %q for this account", c.NewAgent)
		}
	case FeatRareDest:
		if c.PBXCallers <= 0 {
			return fmt.Sprintf("no other account of the PBX calls %s", countryText(c))
		}
		return fmt.Sprintf("%s is called by only %d of the PBX's %d accounts", countryText(c), c.PBXCallers, c.PBXAccounts)
	case FeatSpend:
		return fmt.Sprintf("spend %.2f in the last hour against a usual %.2f", c.Spend1h, c.UsualSpend)
	}
	return ""
}

func countryText(c *Context) string {
	if c.Dest.CallingCode == 0 {
		return c.Country
	}
	cc := "+" + strconv.Itoa(c.Dest.CallingCode)
	if c.Country == "" || c.Country == cc {
		return cc
	}
	return c.Country + " (" + cc + ")"
}

func rate(x float64) string {
	switch {
	case x < 0.05:
		return strconv.FormatFloat(x, 'f', 2, 64)
	case x < 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strconv.FormatFloat(x, 'f', 0, 64)
}

func pct(x float64) string { return strconv.Itoa(int(x*100+0.5)) + "%" }
