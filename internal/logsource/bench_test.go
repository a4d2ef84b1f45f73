package logsource

import (
	"testing"
	"time"
)

// BenchmarkParse measures one security line per format.
func BenchmarkParse(b *testing.B) {
	for _, tc := range []struct{ typ, line string }{
		{TypeFreeSWITCH, "2026-08-22 10:15:02.000001 97.63% [WARNING] sofia_reg.c:1786 SIP auth failure (REGISTER) on sofia profile 'internal' for [1002@203.0.113.10] from ip 198.51.100.7"},
		{TypeModCTI, "2024-04-13 17:21:01.959347 98.47% [NOTICE] cti_fail2ban.c:35 write to fail2ban:ip[124.32.10.1] user[1177] at[2024-04-13T17:21:01.959347+0800] Registration failed succeed!"},
		{TypeAsterisk, `[2015-05-25 07:19:19] SECURITY[6988] res_security_log.c: SecurityEvent="InvalidAccountID",EventTV="2015-05-25T07:19:19.015+0300",Severity="Error",Service="PJSIP",EventVersion="1",AccountID="70000180",SessionID="1-2-3",LocalAddress="IPV4/UDP/1.2.3.4/5060",RemoteAddress="IPV4/UDP/10.250.251.252/5061"`},
	} {
		b.Run(tc.typ, func(b *testing.B) {
			p, _ := NewParser(tc.typ, time.Now, time.UTC)
			line := []byte(tc.line)
			b.ReportAllocs()
			for b.Loop() {
				if ev, _ := p.Parse(line); ev == nil {
					b.Fatal("no event")
				}
			}
		})
	}
}
