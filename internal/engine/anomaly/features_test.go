package anomaly

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/callpolicy/dest"
	"github.com/tollguard/tollguard/internal/event"
)

// monday is the first day of test histories.
var monday = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

const (
	homeSrc = "100.64.0.10:5060"
	homeUA  = "Yealink SIP-T46S"
)

func newBaseline(t testing.TB, cfg Config) *Baseline {
	t.Helper()
	if cfg.Country == "" {
		cfg.Country = "GB"
	}
	b, err := NewBaseline(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func call(at time.Time, account, to, src, ua string) *event.CallAttempt {
	return &event.CallAttempt{Meta: event.Meta{Time: at, Source: netip.MustParseAddrPort(src)},
		SIP: event.SIP{Method: "INVITE", UserAgent: ua}, Account: account, Destination: to}
}

// officeEvents is three weeks of an office account: weekdays 9:00–17:00,
// two calls an hour to ten London numbers and now and then Paris, each
// answered for two minutes.
func officeEvents(account string) []event.Event {
	var out []event.Event
	n := 0
	for d := range 21 {
		day := monday.AddDate(0, 0, d)
		if day.Weekday() == time.Saturday || day.Weekday() == time.Sunday {
			continue
		}
		for h := 9; h < 17; h++ {
			for _, m := range []int{10, 40} {
				at := day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
				to := fmt.Sprintf("+4420794600%02d", (n*7)%10*3)
				if n%10 == 0 {
					to = "+33142685300"
				}
				n++
				out = append(out, call(at, account, to, homeSrc, homeUA),
					&event.CallEnded{Meta: event.Meta{Time: at.Add(2 * time.Minute)}, Account: account, Destination: to, Billsec: 2 * time.Minute, Duration: 2 * time.Minute})
			}
		}
	}
	return out
}

// office feeds officeEvents to b.
func office(b *Baseline, account string) {
	for _, ev := range officeEvents(account) {
		b.Observe(ev)
	}
}

// day4 is Thursday of the fourth week, after the office history.
var day4 = monday.AddDate(0, 0, 24)

func TestFeatures(t *testing.T) {
	type step struct {
		at        time.Duration // from day4 00:00
		to        string
		src, ua   string
		ended     time.Duration // billsec of an end event right after, if set
		noAttempt bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
		// check runs on the last attempt's features.
		check func(t *testing.T, v Vector, c Context)
	}{
		{"usual call", []step{{at: 10*time.Hour + 5*time.Minute, to: "+442079460003"}},
			func(t *testing.T, v Vector, c Context) {
				for f := range NumFeatures {
					if f != FeatRate && f != FeatBurst && v[f] != 0 {
						t.Errorf("%s = %v, want 0", f, v[f])
					}
				}
				if c.NewCountry || c.NewRange || c.Usual1h < 1 || c.Usual1h > 3 {
					t.Errorf("context %+v", c)
				}
			}},
		{"new country, rare for the PBX", []step{{at: 10 * time.Hour, to: "+8801712345678"}},
			func(t *testing.T, v Vector, c Context) {
				if !c.NewCountry || c.Country != "BD" || v[FeatNewDest] < 1.5 {
					t.Errorf("new_destination %v, context %+v", v[FeatNewDest], c)
				}
				want := -math.Log10(0.5 / 2) // no other account of 1
				if math.Abs(v[FeatRareDest]-want) > 1e-9 {
					t.Errorf("rare_destination %v, want %v", v[FeatRareDest], want)
				}
			}},
		{"known country, new range", []step{{at: 10 * time.Hour, to: "+33612345678"}},
			func(t *testing.T, v Vector, c Context) {
				if c.NewCountry || !c.NewRange || v[FeatNewDest] != 0.5 {
					t.Errorf("new_destination %v, context %+v", v[FeatNewDest], c)
				}
			}},
		{"premium", []step{{at: 11 * time.Hour, to: "+449098790000"}},
			func(t *testing.T, v Vector, c Context) {
				if !c.Dest.Classes.Has(dest.Premium) && c.Dest.Type != dest.TypePremiumRate {
					t.Fatalf("+44 909 not read as premium: %+v", c.Dest)
				}
				if v[FeatRisk] < 2 {
					t.Errorf("destination_risk %v, want ≥ 2 for an account that never calls premium", v[FeatRisk])
				}
			}},
		{"sequential", []step{
			{at: 10 * time.Hour, to: "+442079461000"}, {at: 10*time.Hour + time.Minute, to: "+442079461001"},
			{at: 10*time.Hour + 2*time.Minute, to: "+442079461002"}, {at: 10*time.Hour + 3*time.Minute, to: "+442079461003"},
			{at: 10*time.Hour + 4*time.Minute, to: "+442079461004"}},
			func(t *testing.T, v Vector, c Context) {
				if c.Sequential != 4 || v[FeatSequential] != 4 {
					t.Errorf("sequential %v (run %d), want 4", v[FeatSequential], c.Sequential)
				}
			}},
		{"two in sequence is chance", []step{
			{at: 10 * time.Hour, to: "+442079461000"}, {at: 10*time.Hour + time.Minute, to: "+442079461001"}},
			func(t *testing.T, v Vector, c Context) {
				if c.Sequential != 1 || v[FeatSequential] != 0 {
					t.Errorf("sequential %v (run %d), want 0 (run 1)", v[FeatSequential], c.Sequential)
				}
			}},
		{"burst at night", func() []step {
			var s []step
			for i := range 14 {
				s = append(s, step{at: 3*time.Hour + time.Duration(i*40)*time.Second, to: fmt.Sprintf("+3712%07d", i*977)})
			}
			return s
		}(),
			func(t *testing.T, v Vector, c Context) {
				if c.Calls10m != 14 || v[FeatBurst] < 10 {
					t.Errorf("burst_10m %v with %d calls in 10 min", v[FeatBurst], c.Calls10m)
				}
				if v[FeatQuietHour] < 2 {
					t.Errorf("quiet_hour %v at 03:00 for an office account", v[FeatQuietHour])
				}
				if v[FeatIntlShare] < 5 || c.IntlRecent != 10 {
					t.Errorf("international_share %v (%d of %d)", v[FeatIntlShare], c.IntlRecent, c.Recent)
				}
				if v[FeatDistinct] < 5 || c.Distinct1h != 14 {
					t.Errorf("distinct_1h %v (%d)", v[FeatDistinct], c.Distinct1h)
				}
			}},
		{"new network and phone", []step{{at: 10 * time.Hour, to: "+442079460003", src: "185.220.100.7:5060", ua: "sipcli/v1.8"}},
			func(t *testing.T, v Vector, c Context) {
				if v[FeatNewAccess] != 2 || c.NewSource.String() != "185.220.100.0/24" || c.NewAgent != "sipcli/v1.8" {
					t.Errorf("new_access %v, source %v, agent %q", v[FeatNewAccess], c.NewSource, c.NewAgent)
				}
			}},
		{"same network, new port and host", []step{{at: 10 * time.Hour, to: "+442079460003", src: "100.64.0.99:5070"}},
			func(t *testing.T, v Vector, c Context) {
				if v[FeatNewAccess] != 0 {
					t.Errorf("new_access %v for the same /24", v[FeatNewAccess])
				}
			}},
		{"short calls", func() []step {
			var s []step
			for i := range 8 {
				s = append(s, step{at: 10*time.Hour + time.Duration(i)*5*time.Minute, to: "+442079460003", ended: time.Second})
			}
			return append(s, step{at: 11 * time.Hour, to: "+442079460003"})
		}(),
			func(t *testing.T, v Vector, c Context) {
				if v[FeatShortCalls] < 3 || c.ShortShare < 0.7 {
					t.Errorf("short_calls %v (share %.2f, usual %.2f)", v[FeatShortCalls], c.ShortShare, c.UsualShort)
				}
			}},
		{"spend", []step{
			{at: 10 * time.Hour, to: "+2521234567", ended: 50 * time.Minute},
			{at: 10*time.Hour + 55*time.Minute, to: "+442079460003"}},
			func(t *testing.T, v Vector, c Context) {
				if v[FeatSpend] < 3 || c.Spend1h < 10 {
					t.Errorf("spend_1h %v (spend %.2f, usual %.2f)", v[FeatSpend], c.Spend1h, c.UsualSpend)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBaseline(t, Config{})
			office(b, "1001")
			var v Vector
			var c Context
			for _, s := range tc.steps {
				src, ua := homeSrc, homeUA
				if s.src != "" {
					src = s.src
				}
				if s.ua != "" {
					ua = s.ua
				}
				at := day4.Add(s.at)
				v, c = b.Attempt(call(at, "1001", s.to, src, ua))
				if s.ended > 0 {
					b.Observe(&event.CallEnded{Meta: event.Meta{Time: at.Add(s.ended)}, Account: "1001", Destination: s.to, Billsec: s.ended, Duration: s.ended})
				}
			}
			for f, x := range v {
				if x < 0 || math.IsNaN(x) || math.IsInf(x, 0) {
					t.Errorf("%s = %v", Feature(f), x)
				}
			}
			tc.check(t, v, c)
		})
	}
}

func TestNewAccountStartsFromPBX(t *testing.T) {
	b := newBaseline(t, Config{})
	for i := range 5 {
		office(b, fmt.Sprint(1000+i))
	}
	// A new account at 10:00 on a weekday is expected to call like the
	// PBX's average account; at 03:00 it is not.
	_, day := b.Attempt(call(day4.Add(10*time.Hour), "2000", "+442079460003", homeSrc, homeUA))
	v, night := b.Attempt(call(day4.Add(27*time.Hour), "2001", "+442079460003", homeSrc, homeUA))
	if day.Usual1h < 0.5 {
		t.Errorf("a new account's usual rate at 10:00 is %.2f, want the PBX's (about 2)", day.Usual1h)
	}
	if night.Usual1h > 0.1 || v[FeatQuietHour] < 2 {
		t.Errorf("a new account at 03:00: usual %.2f, quiet_hour %.2f", night.Usual1h, v[FeatQuietHour])
	}
	if v[FeatNewAccess] != 0 {
		t.Errorf("a new account's first source is not new access: %v", v[FeatNewAccess])
	}
}

func TestHostileAccountsBounded(t *testing.T) {
	b := newBaseline(t, Config{MaxAccounts: 100})
	long := strings.Repeat("x", 10000)
	for i := range 1000 {
		b.Attempt(call(day4.Add(time.Duration(i)*time.Second), fmt.Sprint(long, i), "+442079460003", homeSrc, homeUA))
	}
	if n := b.Accounts(); n > 100 {
		t.Errorf("%d accounts kept, limit 100", n)
	}
	for k := range b.accounts {
		if len(k) > maxKeyLen {
			t.Fatalf("key of %d bytes kept", len(k))
		}
	}
	// Two long names that differ only at the end stay two accounts.
	if key(long+"a") == key(long+"b") {
		t.Error("long names collide")
	}
}

func TestSurprise(t *testing.T) {
	for _, tc := range []struct {
		name     string
		got      float64
		min, max float64
	}{
		{"at the mean", poissonSurprise(3, 3), 0, 0},
		{"1 with mean 1", poissonSurprise(1, 1), 0, 0},
		{"2 with mean 1", poissonSurprise(2, 1), 0.57, 0.58}, // P = 1 − 2/e = 0.264
		{"14 with mean 0.05", poissonSurprise(14, 0.05), 28, 30},
		{"capped", poissonSurprise(1000, 0.001), maxSurprise, maxSurprise},
		{"binomial at expectation", binomialSurprise(1, 10, 0.1), 0, 0},
		{"binomial 10 of 10 at 0.5", binomialSurprise(10, 10, 0.5), 3.0, 3.02}, // 2^-10
		{"binomial none", binomialSurprise(0, 10, 0.5), 0, 0},
	} {
		if tc.got < tc.min || tc.got > tc.max || math.IsNaN(tc.got) {
			t.Errorf("%s: %v, want in [%v, %v]", tc.name, tc.got, tc.min, tc.max)
		}
	}
}
