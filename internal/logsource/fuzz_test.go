package logsource

import (
	"bufio"
	"os"
	"testing"
	"time"
)

func addFixtures(f *testing.F, file string) {
	fh, err := os.Open(file)
	if err != nil {
		f.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		f.Add(append([]byte(nil), sc.Bytes()...))
	}
}

// fuzzParser checks that no line crashes a parser and that an event always
// names a valid, unmapped source address.
func fuzzParser(f *testing.F, typ, fixtures string) {
	addFixtures(f, fixtures)
	p, err := NewParser(typ, func() time.Time { return fixedNow }, time.UTC)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, why := p.Parse(line)
		if ev == nil {
			if why == dropNone {
				t.Fatal("no event and no reason")
			}
			return
		}
		a := ev.Base().Source.Addr()
		if !a.IsValid() || a.Is4In6() || a.Zone() != "" {
			t.Fatalf("bad source %v", ev.Base().Source)
		}
	})
}

func FuzzFreeSWITCHLine(f *testing.F) { fuzzParser(f, TypeFreeSWITCH, "testdata/freeswitch.log") }
func FuzzModCTILine(f *testing.F)     { fuzzParser(f, TypeModCTI, "testdata/cti_fail2ban.log") }
func FuzzAsteriskLine(f *testing.F)   { fuzzParser(f, TypeAsterisk, "testdata/security.log") }
