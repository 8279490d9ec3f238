//go:build linux

package httpserver

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// hasUnread reports whether bytes the client sent wait, unread, in the kernel's receive
// queue of conn (TIOCINQ, alias FIONREAD): then a connection that looks silent or late is only waiting for
// the server, which is slow (a busy machine), and the client must not be blamed for it.
func hasUnread(conn any) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	raw.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
	return n > 0
}
