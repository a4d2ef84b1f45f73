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
	case *event.Verdict:
		maskSIP(&e.SIP)
	case *event.Ban:
		e.Account = MaskNumber(e.Account)
	case *event.Unban:
		e.Account = MaskNumber(e.Account)
	case *event.Admin:
		e.Target = MaskNumber(e.Target)
	}
}
