package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tollguard/tollguard/internal/safetext"
)

// maxBody bounds a request body; admin requests are small.
const maxBody = 1 << 20

// ErrorBody is the JSON shape of every error answer: {"error": "..."}.
type ErrorBody struct {
	Error string `json:"error"`
}

// WriteJSON writes v as JSON with status code. Encoding errors after the
// header is sent cannot be reported and are ignored. Control and bidi
// characters encoding/json leaves raw are written as \uXXXX
// (safetext.JSON), so the answer is safe on a terminal and decodes the same.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	_, _ = w.Write(safetext.JSON(b.Bytes()))
}

// WriteError writes {"error": msg} with status code.
func WriteError(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, ErrorBody{Error: msg})
}

// DecodeJSON decodes r's body into v strictly: at most 1 MiB, unknown fields
// and trailing data are errors. The error is meant for the client (400).
func DecodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return errors.New("request body is empty, expected a JSON object")
		case errors.As(err, &mbe):
			return fmt.Errorf("request body is larger than %d bytes", maxBody)
		}
		return fmt.Errorf("request body is not valid JSON: %s", capText(err.Error(), 200))
	}
	if dec.More() {
		return errors.New("request body holds more than one JSON value")
	}
	return nil
}

// capText cuts s to at most n bytes on a rune boundary, marking the cut.
func capText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// quoteCap quotes client-supplied text for error messages, capped. Log
// attributes take capText: the slog handler quotes them, and quoting here
// too would log "\"…\"".
func quoteCap(s string, n int) string {
	return strconv.Quote(capText(s, n))
}

// CheckText validates client-supplied free text (an account, a reason):
// valid UTF-8, no control characters, at most max bytes. field names it in
// the error, which is meant for the client.
func CheckText(field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s is longer than %d bytes", field, max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	if i := strings.IndexFunc(s, isControl); i >= 0 {
		return fmt.Errorf("%s contains a control character at byte %d", field, i)
	}
	return nil
}

// isControl reports C0, DEL, C1 and the bidi/line controls that can hide
// or reorder text in a terminal or a log.
func isControl(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r == 0x2028, r == 0x2029, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f:
		return true
	}
	return false
}
