package bench

import (
	"strings"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	in := `# HELP tollguard_sipfw_drops_total Messages dropped.
# TYPE tollguard_sipfw_drops_total counter
tollguard_sipfw_drops_total{reason="gate"} 1.234e+06
tollguard_sipfw_drops_total{reason="verdict"} 0
tollguard_store_events_written_total 2000
broken line
`
	m, err := ParseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  string
		want float64
	}{
		{name: "labelled, exponent", key: `tollguard_sipfw_drops_total{reason="gate"}`, want: 1234000},
		{name: "labelled zero", key: `tollguard_sipfw_drops_total{reason="verdict"}`, want: 0},
		{name: "plain", key: "tollguard_store_events_written_total", want: 2000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := m[tc.key]; !ok || got != tc.want {
				t.Errorf("m[%s] = %v, %v; want %v", tc.key, got, ok, tc.want)
			}
		})
	}
	if len(m) != 3 {
		t.Errorf("parsed %d samples, want 3: %v", len(m), m)
	}
}

func TestParseProcStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ProcStatus
		wantErr bool
	}{
		{name: "both", in: "Name:\ttollguard\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n", want: ProcStatus{RSS: 40960 << 10, HWM: 51200 << 10}},
		{name: "no rss", in: "Name:\ttollguard\n", wantErr: true},
		{name: "bad unit", in: "VmRSS:\t 12 MB\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStatus(strings.NewReader(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseProcCPU(t *testing.T) {
	// pid (comm with spaces) state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime ...
	stat := "4242 (toll guard) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 5 0"
	got, err := parseProcCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * time.Second; got != want {
		t.Errorf("cpu = %v, want %v", got, want)
	}
	if _, err := parseProcCPU("garbage"); err == nil {
		t.Error("garbage parsed without error")
	}
}

func TestParseRcvbufErrors(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL\nIp: 1 64\n" +
		"Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n" +
		"Udp: 100 2 7 90 5 0\n"
	got, err := parseRcvbufErrors(snmp)
	if err != nil || got != 5 {
		t.Errorf("got %d, %v; want 5", got, err)
	}
	if _, err := parseRcvbufErrors("Ip: a\nIp: 1\n"); err == nil {
		t.Error("missing Udp lines parsed without error")
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{name: "thousands", got: thousands(1234567), want: "1,234,567"},
		{name: "thousands small", got: thousands(999), want: "999"},
		{name: "thousands negative", got: thousands(-4000), want: "-4,000"},
		{name: "µs fraction", got: us(2500 * time.Nanosecond), want: "2.5 µs"},
		{name: "µs", got: us(471 * time.Microsecond), want: "471 µs"},
		{name: "ms", got: us(12200 * time.Microsecond), want: "12.2 ms"},
		{name: "MB", got: mb(51_900_000), want: "51.9 MB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}
