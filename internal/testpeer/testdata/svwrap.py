#!/usr/bin/python3
"""Run a SIPVicious 0.3.x tool with its sockets bound to one source address.

SIPVicious 0.3.3 accepts -b/--bindingip but does not pass it on to the
scanner classes, so every tool binds to 0.0.0.0 and the kernel picks the
source address. Tests give each attacker its own 127.0.x.y address, so this
wrapper replaces a wildcard bind with the address given first:

    svwrap.py BINDIP svcrack|svwar|svmap [tool arguments...]

When SVWRAP_USERAGENT is set, it replaces the default User-Agent
("friendly-scanner"), so tests can tell a disguised attacker, caught by its
behaviour, from one caught by its fingerprint.
"""
import os
import socket
import sys

PKG_DIRS = ["/usr/share/sipvicious"]


def main():
    if len(sys.argv) < 3:
        sys.stderr.write("usage: svwrap.py BINDIP svcrack|svwar|svmap [args...]\n")
        return 2
    bindip, tool = sys.argv[1], sys.argv[2]
    if tool not in ("svcrack", "svwar", "svmap"):
        sys.stderr.write("svwrap.py: unknown tool %r\n" % tool)
        return 2

    orig_bind = socket.socket.bind

    def bind(self, address):
        if isinstance(address, tuple) and address[0] in ("", "0.0.0.0"):
            address = (bindip,) + tuple(address[1:])
        return orig_bind(self, address)

    socket.socket.bind = bind

    for d in PKG_DIRS + os.environ.get("SIPVICIOUS_PATH", "").split(os.pathsep):
        if d and os.path.isdir(os.path.join(d, "sipvicious")) and d not in sys.path:
            sys.path.insert(0, d)
    ua = os.environ.get("SVWRAP_USERAGENT")
    if ua:
        from sipvicious.libs import svhelper
        fn = svhelper.makeRequest
        names = fn.__code__.co_varnames[:fn.__code__.co_argcount]
        defaults = list(fn.__defaults__)
        idx = names.index("useragent") - (len(names) - len(defaults))
        defaults[idx] = ua
        fn.__defaults__ = tuple(defaults)
    module = __import__("sipvicious." + tool, fromlist=["main"])
    sys.argv = [tool] + sys.argv[3:]
    return module.main()


if __name__ == "__main__":
    sys.exit(main())
