//go:build !linux

package sipfw

import "net"

// waitReadable returns at once where peeking a socket is not wired up; the
// first Read then waits with its buffer.
func waitReadable(net.Conn) error { return nil }
