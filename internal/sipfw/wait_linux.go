package sipfw

import (
	"net"
	"syscall"
)

// waitReadable blocks until c has bytes to read (or end of stream), its
// read deadline passes (os.ErrDeadlineExceeded), or it is closed — without
// a read buffer. Each wake-up peeks one byte without blocking: data that
// arrived before the wait began is seen at once, since the poller forgets
// readiness reported before the wait.
func waitReadable(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var b [1]byte
	return rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
	})
}
