package testpeer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"text/template"
	"time"
)

// KamailioEdge is a running Kamailio configured as the usual SIP edge
// firewall (testdata/kamailio-edge.cfg.tmpl: pike, the ipban htable, the
// scanner User-Agent check, the auth-failure ban) in front of a PBX. It
// is for benchmarks, which have no testing.TB; Stop ends it.
type KamailioEdge struct {
	// Addr is where it listens (UDP).
	Addr netip.AddrPort
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
	log  *logBuffer
}

// StartKamailioEdge starts Kamailio on addr relaying to upstream with the
// given number of worker processes (zero means 2), and waits until it
// answers. The caller must call Stop.
func StartKamailioEdge(ctx context.Context, addr, upstream netip.AddrPort, children int) (*KamailioEdge, error) {
	bin, err := exec.LookPath("kamailio")
	if err != nil {
		return nil, fmt.Errorf("testpeer: kamailio not installed: %w", err)
	}
	modPath, err := kamailioModules()
	if err != nil {
		return nil, err
	}
	if children <= 0 {
		children = 2
	}
	tmpl, err := template.ParseFS(files, "testdata/kamailio-edge.cfg.tmpl")
	if err != nil {
		return nil, fmt.Errorf("testpeer: parsing the edge template: %w", err)
	}
	var cfg bytes.Buffer
	if err := tmpl.Execute(&cfg, map[string]any{"Listen": addr.String(), "Upstream": upstream.String(),
		"ModPath": modPath, "Children": children}); err != nil {
		return nil, fmt.Errorf("testpeer: rendering the edge template: %w", err)
	}
	dir, err := os.MkdirTemp("", "kamailio-edge-")
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	k := &KamailioEdge{Addr: addr, dir: dir, done: make(chan struct{}), log: &logBuffer{}}
	k.cmd = exec.Command(bin, "-f", cfgPath, "-DD", "-E", "-m", "64", "-M", "8",
		"-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir)
	k.cmd.Stdout, k.cmd.Stderr = k.log, k.log
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := k.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testpeer: starting kamailio: %w", err)
	}
	go func() { _ = k.cmd.Wait(); close(k.done) }()
	if err := k.waitUp(ctx); err != nil {
		k.Stop()
		return nil, fmt.Errorf("%w; log:\n%s", err, k.log.String())
	}
	return k, nil
}

// waitUp polls with OPTIONS (relayed to the PBX) until an answer comes.
// Polls come from one address, few enough to stay under pike's limit.
func (k *KamailioEdge) waitUp(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-k.done:
			return errors.New("testpeer: kamailio exited")
		default:
		}
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(k.Addr))
		if err == nil {
			local := c.LocalAddr().String()
			msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKup%d;rport\r\nMax-Forwards: 70\r\n"+
				"From: <sip:up@%s>;tag=1\r\nTo: <sip:%s>\r\nCall-ID: up%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
				k.Addr, local, time.Now().UnixNano(), k.Addr.Addr(), k.Addr, time.Now().UnixNano())
			_, _ = c.Write([]byte(msg))
			_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			buf := make([]byte, 4096)
			n, err := c.Read(buf)
			c.Close()
			if err == nil && bytes.HasPrefix(buf[:n], []byte("SIP/2.0 ")) {
				return nil
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	return errors.New("testpeer: kamailio edge did not answer within 10 s")
}

// Stop ends Kamailio (its process group) and removes its directory.
func (k *KamailioEdge) Stop() {
	_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		<-k.done
	}
	os.RemoveAll(k.dir)
}
