package sim

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

const optionsReq = "OPTIONS sip:100@127.0.0.1 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.5:5070;branch=z9hG4bKabc;rport\r\n" +
	"Max-Forwards: 70\r\n" +
	"From: \"sipvicious\" <sip:100@1.1.1.1>;tag=x1\r\n" +
	"To: <sip:100@1.1.1.1>\r\n" +
	"Call-ID: lg42-load\r\n" +
	"CSeq: 1 OPTIONS\r\n" +
	"Content-Length: 0\r\n\r\n"

func TestAppendResponse(t *testing.T) {
	tests := []struct {
		name     string
		req      string
		wantOK   bool
		wantLine string
		wantTag  bool
	}{
		{name: "options", req: optionsReq, wantOK: true, wantLine: "SIP/2.0 200 OK", wantTag: true},
		{name: "register", req: strings.Replace(optionsReq, "OPTIONS sip", "REGISTER sip", 1), wantOK: true, wantLine: "SIP/2.0 200 OK", wantTag: true},
		{name: "invite is 501", req: strings.Replace(optionsReq, "OPTIONS sip", "INVITE sip", 1), wantOK: true, wantLine: "SIP/2.0 501 Not Implemented", wantTag: true},
		{name: "compact headers", req: "OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nf: <sip:a@b>;tag=1\r\nt: <sip:a@b>;tag=2\r\ni: abc\r\nCSeq: 1 OPTIONS\r\n\r\n", wantOK: true, wantLine: "SIP/2.0 200 OK"},
		{name: "ack gets nothing", req: strings.Replace(optionsReq, "OPTIONS sip", "ACK sip", 1)},
		{name: "response gets nothing", req: "SIP/2.0 200 OK\r\nVia: x\r\n\r\n"},
		{name: "missing call-id", req: strings.Replace(optionsReq, "Call-ID: lg42-load\r\n", "", 1)},
		{name: "garbage", req: "hello"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := AppendResponse([]byte("keep"), []byte(tc.req))
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
			}
			if !bytes.HasPrefix(out, []byte("keep")) {
				t.Fatalf("dst prefix lost: %q", out)
			}
			out = out[4:]
			if !ok {
				if len(out) != 0 {
					t.Errorf("appended %q on failure", out)
				}
				return
			}
			m, err := sip.ParseMessage(out)
			if err != nil {
				t.Fatalf("response does not parse: %v\n%s", err, out)
			}
			res := m.(*sip.Response)
			if res.StartLine() != tc.wantLine {
				t.Errorf("start line %q, want %q", res.StartLine(), tc.wantLine)
			}
			if res.To() == nil || !res.To().Params.Has("tag") {
				t.Errorf("To without tag: %q", out)
			}
			if tag, _ := res.To().Params.Get("tag"); tc.wantTag && tag != "sim" {
				t.Errorf("To tag = %q, want sim", tag)
			}
		})
	}
}

func TestCallIDSeq(t *testing.T) {
	res, _ := AppendResponse(nil, []byte(optionsReq))
	tests := []struct {
		name   string
		msg    string
		prefix string
		want   int
		wantOK bool
	}{
		{name: "load call-id", msg: string(res), prefix: "lg", want: 42, wantOK: true},
		{name: "other prefix", msg: string(res), prefix: "fl"},
		{name: "compact", msg: "SIP/2.0 200 OK\r\ni: fl7-x\r\n\r\n", prefix: "fl", want: 7, wantOK: true},
		{name: "no digits", msg: "SIP/2.0 200 OK\r\nCall-ID: lg-x\r\n\r\n", prefix: "lg"},
		{name: "too many digits", msg: "SIP/2.0 200 OK\r\nCall-ID: lg12345678901\r\n\r\n", prefix: "lg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := callIDSeq([]byte(tc.msg), tc.prefix)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("callIDSeq = %d, %v; want %d, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
	if got := responseStatus(res); got != 200 {
		t.Errorf("responseStatus = %d, want 200", got)
	}
}

func FuzzAppendResponse(f *testing.F) {
	f.Add([]byte(optionsReq))
	f.Add([]byte("REGISTER sip:x SIP/2.0\r\nv: a\r\nf: b\r\nt: c\r\ni: d\r\nCSeq: 1 REGISTER\r\n\r\n"))
	f.Fuzz(func(t *testing.T, req []byte) {
		out, ok := AppendResponse(nil, req)
		if !ok {
			if len(out) != 0 {
				t.Fatalf("appended %q on failure", out)
			}
			return
		}
		if !bytes.HasPrefix(out, []byte("SIP/2.0 ")) || !bytes.HasSuffix(out, []byte("\r\n\r\n")) {
			t.Fatalf("malformed response %q", out)
		}
		_, _ = callIDSeq(out, "lg")
		_ = responseStatus(out)
	})
}

func BenchmarkAppendResponse(b *testing.B) {
	req := []byte(optionsReq)
	out := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		out, _ = AppendResponse(out[:0], req)
	}
}

func BenchmarkAppendLoadRequest(b *testing.B) {
	target := netip.MustParseAddrPort("127.0.0.1:5060")
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		buf = appendLoadRequest(buf[:0], "OPTIONS", i, "127.1.0.1:40000", target)
		i++
	}
}

func BenchmarkCallIDSeq(b *testing.B) {
	res, _ := AppendResponse(nil, []byte(optionsReq))
	b.ReportAllocs()
	for b.Loop() {
		callIDSeq(res, "lg")
	}
}
