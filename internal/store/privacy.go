package store

import "github.com/tollguard/tollguard/internal/event"

// MaskNumber hides the middle of a phone number for display (PIPL): a
// string of 7 or more digits, optionally with a leading +, keeps its first
// three and last four characters ("13812345678" → "138****5678"). Anything
// else (extensions, names, addresses) is returned unchanged.
func MaskNumber(s string) string {
	digits := s
	if len(digits) > 0 && digits[0] == '+' {
		digits = digits[1:]
	}
	if len(digits) < 7 {
		return s
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return s
		}
	}
	b := []byte(s)
	for i := 3; i < len(b)-4; i++ {
		b[i] = '*'
	}
	return string(b)
}

// MaskText masks every phone number inside free text (admin targets such as
// "13812345678@198.51.100.9", details, reasons): each run of 7 or more
// digits, with a + before it or not, gets MaskNumber's form. Addresses,
// times and durations have shorter runs and are left alone.
func MaskText(s string) string {
	var b []byte
	for i := 0; i < len(s); {
		if s[i] < '0' || s[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j-i >= 7 {
			if b == nil {
				b = []byte(s)
			}
			for k := i + 3; k < j-4; k++ {
				b[k] = '*'
			}
		}
		i = j
	}
	if b == nil {
		return s
	}
	return string(b)
}

// Mask replaces the phone numbers of r (account, From, To, Request-URI
// users, destination) with MaskNumber's form, in place.
func (r *Record) Mask() {
	r.Account = MaskNumber(r.Account)
	maskSIP := func(s *event.SIP) {
		s.FromUser, s.ToUser, s.RURIUser = MaskNumber(s.FromUser), MaskNumber(s.ToUser), MaskNumber(s.RURIUser)
		s.AuthUser, s.FromName = MaskNumber(s.AuthUser), MaskNumber(s.FromName)
	}
	switch e := r.Event.(type) {
	case *event.Request:
		maskSIP(&e.SIP)
	case *event.Response:
		maskSIP(&e.SIP)
	case *event.AuthFailure:
		maskSIP(&e.SIP)
		e.Account = MaskNumber(e.Account)
	case *event.Register:
		maskSIP(&e.SIP)
		e.Account = MaskNumber(e.Account)
	case *event.CallAttempt:
		maskSIP(&e.SIP)
		e.Account, e.Destination = MaskNumber(e.Account), MaskNumber(e.Destination)
	case *event.CallAnswered:
		maskSIP(&e.SIP)
		e.Account, e.Destination = MaskNumber(e.Account), MaskNumber(e.Destination)
	case *event.CallEnded:
		maskSIP(&e.SIP)
		e.Account, e.Destination = MaskNumber(e.Account), MaskNumber(e.Destination)
	case *event.CallRinging:
		maskSIP(&e.SIP)
		e.Account, e.Destination = MaskNumber(e.Account), MaskNumber(e.Destination)
	case *event.Verdict:
		maskSIP(&e.SIP)
		e.Reason = MaskText(e.Reason)
	case *event.Ban:
		e.Account, e.Reason = MaskNumber(e.Account), MaskText(e.Reason)
	case *event.Unban:
		e.Account, e.Reason = MaskNumber(e.Account), MaskText(e.Reason)
	case *event.Admin:
		e.Target, e.Detail = MaskText(e.Target), MaskText(e.Detail)
	}
}
