package event

// Classify returns the domain event a final response implies, or nil when it
// implies none. It is pure: the same Response always gives the same answer.
//
//   - AuthFailure: the request carried credentials and got 401, 403 or 407
//     without stale=true, or a REGISTER got 403 or 404 (unknown account) with
//     or without credentials. A 401/407 to a request without credentials is
//     the ordinary digest challenge (RFC 3261 §22.2) and is not a failure
//     (DESIGN key decision 2).
//   - Register: a REGISTER got a 2xx granting Expires > 0 (RFC 3261 §10.3).
//   - CallAnswered: an INVITE got a 2xx.
//   - CallEnded: an INVITE got a final non-2xx other than a 401/407
//     challenge; Cause is "cancel" for 487
//     (RFC 3261 §9.2) and "failed" otherwise. Duration and Billsec are left
//     zero: the caller, who knows when the call started, fills them in.
//
// The derived event copies r's Meta and SIP. Provisional responses (< 200)
// give nil.
func Classify(r *Response) Event {
	if r == nil || r.Code < 200 {
		return nil
	}
	code := r.Code
	switch {
	case isAuthFailure(r):
		return &AuthFailure{Meta: r.Meta, SIP: r.SIP, Account: r.Account(), Code: code}
	case code >= 300:
		// A 401/407 to an INVITE is a challenge the caller answers with a
		// new INVITE in the same call: the call has not ended.
		if r.Method == "INVITE" && code != 401 && code != 407 {
			cause := "failed"
			if code == 487 {
				cause = "cancel"
			}
			return &CallEnded{
				Meta: r.Meta, SIP: r.SIP, Account: r.Account(),
				Destination: r.RURIUser, Code: code, Cause: cause,
			}
		}
		return nil
	}
	// 2xx
	switch r.Method {
	case "REGISTER":
		if r.Expires <= 0 {
			return nil
		}
		return &Register{Meta: r.Meta, SIP: r.SIP, Account: r.Account(), Expires: r.Expires}
	case "INVITE":
		return &CallAnswered{Meta: r.Meta, SIP: r.SIP, Account: r.Account(), Destination: r.RURIUser}
	}
	return nil
}

// isAuthFailure applies DESIGN key decision 2 to a final response.
func isAuthFailure(r *Response) bool {
	switch r.Code {
	case 401, 407:
		return r.HasCredentials && !r.Stale
	case 403:
		return r.HasCredentials || r.Method == "REGISTER"
	case 404:
		return r.Method == "REGISTER"
	}
	return false
}
