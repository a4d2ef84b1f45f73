package rates

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// Amount is money in millionths of a currency unit: exact decimal
// arithmetic for rates like 0.0125 per minute, no float rounding.
type Amount int64

// Micro is one currency unit as an Amount.
const Micro Amount = 1_000_000

// ParseAmount reads a non-negative decimal with at most 6 fractional digits
// ("0.02", "13.5696", "1").
func ParseAmount(s string) (Amount, error) {
	s = strings.TrimSpace(s)
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || (dot && frac == "") || len(frac) > 6 || len(whole) > 9 {
		return 0, errors.New("want a decimal like 0.02 with at most 6 decimals")
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, errors.New("want a non-negative decimal like 0.02")
			}
		}
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	}
	return Amount(w)*Micro + Amount(f), nil
}

// String renders the amount with the decimals it needs, at least two
// ("0.02", "13.5696", "1.00").
func (a Amount) String() string {
	neg := a < 0
	if neg {
		a = -a
	}
	s := strconv.FormatInt(int64(a/Micro), 10) + "." + strings.TrimRight(strconv.FormatInt(int64(a%Micro)+int64(Micro), 10)[1:], "0")
	if i := strings.IndexByte(s, '.'); len(s)-i-1 < 2 {
		s += strings.Repeat("0", 2-(len(s)-i-1))
	}
	if neg {
		s = "-" + s
	}
	return s
}

// mulDivCeil returns a*b/c rounded up, saturating instead of overflowing.
func mulDivCeil(a, b, c int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	q, r := a*b/c, a*b%c
	if r != 0 {
		q++
	}
	return q
}
