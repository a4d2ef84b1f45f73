package anomaly

import (
	"net/netip"
	"time"

	"github.com/tollguard/tollguard/internal/callpolicy/dest"
)

// Feature indexes the vector a call attempt is scored on. Every feature is
// zero or small for an account doing what it usually does and grows with how
// unusual the attempt is, so the forest isolates large values.
type Feature int

// The features, in vector order. Their names are stored in model files: a
// model whose names differ is refused.
const (
	FeatBurst      Feature = iota // −log10 P(calls in 10 min) for the usual rate at this hour of the week
	FeatRate                      // −log10 P(calls in the last hour) for the usual rate at this hour
	FeatQuietHour                 // log2 of the account's mean hourly rate over its usual rate at this hour
	FeatNewDest                   // new country: 1.5 + half −log10 of the account's usual international share; new range 0.5
	FeatRisk                      // premium, satellite or high-risk: 1 − log10 of the usual share of such calls
	FeatIntlShare                 // −log10 P(international among the last 10) for the usual share
	FeatDistinct                  // −log10 P(distinct destinations in the last hour) for the usual
	FeatSequential                // steps between numbers dialled in sequence (1–3 apart), ending with this one; 0 below 2
	FeatShortCalls                // −log10 P(short or unanswered among the last 10 ended) for the usual share
	FeatNewAccess                 // new source network (1) and new User-Agent (1)
	FeatSpend                     // log2 of spend in the last hour against the usual
	FeatRareDest                  // international or premium: −log10 of the share of the PBX's accounts that call that country (its premium numbers count apart)
	NumFeatures
)

var featureNames = [NumFeatures]string{
	"burst_10m", "rate_1h", "quiet_hour", "new_destination", "destination_risk",
	"international_share", "distinct_1h", "sequential", "short_calls", "new_access", "spend_1h",
	"rare_destination",
}

// featureWeights is how often trees split on each feature, relative to
// the others. Where the money goes (new and costly destinations, a new
// network or phone, numbers in sequence) counts twice to three times what
// volume and time of day count: a normal account now and then calls at
// night or in a burst, and those alone should not outscore a first call to
// a satellite number.
var featureWeights = [NumFeatures]float64{
	FeatBurst: 1, FeatRate: 1, FeatQuietHour: 1, FeatNewDest: 3, FeatRisk: 3, FeatIntlShare: 1,
	FeatDistinct: 1, FeatSequential: 2, FeatShortCalls: 1, FeatNewAccess: 2, FeatSpend: 1, FeatRareDest: 2,
}

// String returns the feature's stable name.
func (f Feature) String() string {
	if f >= 0 && f < NumFeatures {
		return featureNames[f]
	}
	return "unknown"
}

// FeatureNames returns the names in vector order.
func FeatureNames() []string { return append([]string(nil), featureNames[:]...) }

// Vector is one call attempt's features.
type Vector [NumFeatures]float64

// Context is what the words of a reason need: the raw quantities behind
// the features of one attempt.
type Context struct {
	Account string
	Time    time.Time
	// Dest is the attempt's destination as the normaliser read it.
	Dest dest.Result
	// Country is the destination's country key ("LV", or "+882" for a
	// non-geographic code); Range its number range (E.164 less 4 digits).
	Country, Range string
	// NewCountry, NewRange: never seen for this account in the window.
	NewCountry, NewRange bool
	// Calls10m, Calls1h count attempts including this one (at most the
	// ring's size); Usual1h is the expected hourly rate at this hour of the
	// week, Mean1h the account's average over the week.
	Calls10m, Calls1h int
	Usual1h, Mean1h   float64
	Distinct1h        int
	UsualDistinct     float64
	Sequential        int
	IntlRecent        int     // international among the last Recent attempts
	Recent            int     // attempts looked at for IntlRecent (≤ 10)
	UsualIntl         float64 // usual share of international attempts
	UsualRisk         float64 // usual share of premium/satellite/high-risk attempts
	ShortShare        float64 // short or unanswered among recent ended calls
	UsualShort        float64
	NewSource         netip.Prefix // valid when the source network is new
	NewAgent          string       // set when the User-Agent is new (capped)
	Spend1h           float64
	UsualSpend        float64
	// PBXCallers is how many other accounts (of PBXAccounts) call
	// Country; set for international destinations.
	PBXCallers, PBXAccounts int
	// History is the account's decayed number of attempts in the window;
	// zero for an account never seen.
	History float64
}
