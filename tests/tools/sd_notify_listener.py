#!/usr/bin/env python3
"""A stand-in for systemd's notification socket, for tests.

Usage: sd_notify_listener.py SOCKET LOG [SECONDS]

Binds a unix datagram socket at SOCKET and appends one line per message
to LOG: "<sender pid> <message>" (multi-line messages joined with '|'),
flushed at once. The sender pid comes from SCM_CREDENTIALS, as systemd
gets it, so a test can tell the daemon's messages from its workers'.
Exits after SECONDS (default 120) so a forgotten listener never lingers.
"""
import os
import socket
import struct
import sys
import time

path, log = sys.argv[1], sys.argv[2]
limit = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
end = time.monotonic() + limit
with open(log, "a") as out:
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            break
        pid = -1
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        text = data.decode("utf-8", "replace").strip("\n").replace("\n", "|")
        out.write("%d %s\n" % (pid, text))
        out.flush()
