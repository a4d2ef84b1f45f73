package sim

import (
	"bytes"
)

// responseStatus returns the status code of a SIP response's start line
// ("SIP/2.0 200 OK"), or 0 when data is not a response.
func responseStatus(data []byte) int {
	const prefix = "SIP/2.0 "
	if len(data) < len(prefix)+3 || string(data[:len(prefix)]) != prefix {
		return 0
	}
	code := 0
	for _, c := range data[len(prefix) : len(prefix)+3] {
		if c < '0' || c > '9' {
			return 0
		}
		code = code*10 + int(c-'0')
	}
	return code
}

// headerValue returns the value of the first header named name (or its
// compact form, RFC 3261 §7.3.3) in a SIP message, trimmed, or nil. It
// reads only the header section and never allocates.
func headerValue(data []byte, name, compact string) []byte {
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(data)
	}
	head := data[:end]
	for len(head) > 0 {
		i := bytes.Index(head, []byte("\r\n"))
		if i < 0 {
			return nil
		}
		head = head[i+2:]
		line := head
		if j := bytes.Index(line, []byte("\r\n")); j >= 0 {
			line = line[:j]
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		key := bytes.TrimSpace(line[:colon])
		if bytes.EqualFold(key, []byte(name)) || (compact != "" && bytes.EqualFold(key, []byte(compact))) {
			return bytes.TrimSpace(line[colon+1:])
		}
	}
	return nil
}

// callIDSeq extracts the sequence number from a Call-ID of the form
// prefix + decimal digits + optional "@..." or "-..." suffix.
func callIDSeq(data []byte, prefix string) (int, bool) {
	v := headerValue(data, "Call-ID", "i")
	if !bytes.HasPrefix(v, []byte(prefix)) {
		return 0, false
	}
	v = v[len(prefix):]
	n, digits := 0, 0
	for _, c := range v {
		if c < '0' || c > '9' {
			break
		}
		if digits == 9 {
			return 0, false
		}
		n = n*10 + int(c-'0')
		digits++
	}
	return n, digits > 0
}
