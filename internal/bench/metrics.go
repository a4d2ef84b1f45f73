package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Metrics is one scrape of a Prometheus text exposition: the value of each
// sample keyed by its name and labels exactly as exposed, for example
// `tollguard_sipfw_drops_total{reason="gate"}`.
type Metrics map[string]float64

// ParseMetrics reads the Prometheus text format, skipping comments and
// lines it cannot read.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bench: reading metrics: %w", err)
	}
	return m, nil
}

// ProcStatus is what /proc/PID/status says about a process's memory.
type ProcStatus struct {
	// RSS is VmRSS, the resident set now, in bytes.
	RSS int64
	// HWM is VmHWM, the peak resident set, in bytes.
	HWM int64
}

// ReadProcStatus reads VmRSS and VmHWM of pid.
func ReadProcStatus(pid int) (ProcStatus, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcStatus{}, fmt.Errorf("bench: reading process status: %w", err)
	}
	defer f.Close()
	return parseProcStatus(f)
}

func parseProcStatus(r io.Reader) (ProcStatus, error) {
	var s ProcStatus
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch name {
		case "VmRSS":
			dst = &s.RSS
		case "VmHWM":
			dst = &s.HWM
		default:
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return s, fmt.Errorf("bench: unexpected %s line %q", name, sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return s, fmt.Errorf("bench: %s: %w", name, err)
		}
		*dst = kb << 10
	}
	if s.RSS == 0 {
		return s, fmt.Errorf("bench: no VmRSS in process status")
	}
	return s, sc.Err()
}

// clockTick is USER_HZ, which is 100 on every Linux architecture Go runs on.
const clockTick = 100

// ReadProcCPU returns the CPU time (user + system) pid has used.
func ReadProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: reading process stat: %w", err)
	}
	return parseProcCPU(string(b))
}

func parseProcCPU(stat string) (time.Duration, error) {
	// The command name may hold spaces; fields resume after its ')'.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: malformed stat line")
	}
	f := strings.Fields(stat[i+1:])
	// After ')': state(3) ppid ... utime is field 14, stime 15 (1-based).
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: short stat line")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: stat times: %v %v", err1, err2)
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

// ReadUDPRcvbufErrors returns the system-wide count of UDP datagrams the
// kernel dropped because a socket's receive buffer was full.
func ReadUDPRcvbufErrors() (int64, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, fmt.Errorf("bench: reading /proc/net/snmp: %w", err)
	}
	return parseRcvbufErrors(string(b))
}

func parseRcvbufErrors(snmp string) (int64, error) {
	var head []string
	for line := range strings.SplitSeq(snmp, "\n") {
		rest, ok := strings.CutPrefix(line, "Udp: ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if head == nil {
			head = f
			continue
		}
		for i, name := range head {
			if name == "RcvbufErrors" && i < len(f) {
				return strconv.ParseInt(f[i], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("bench: no Udp RcvbufErrors in /proc/net/snmp")
}
