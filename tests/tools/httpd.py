#!/usr/bin/env python3
"""tests/tools/httpd.py - a small HTTP server for the integration tests.

Binds 127.0.0.1 on a kernel-chosen port, writes the port to --port-file
(atomically: temp file + rename, so a waiting test never reads half of it)
and serves files from --root. Special paths:

  /redirect/N     N redirects (/redirect/N-1 ... /redirect/0), then /big
  /location?to=U  one redirect to the URL U (file://, ftp://...: redirects
                  must not escape the allowed schemes)
  /slow           trickles 1 byte every 0.5 s (for --slow-bytes bytes)
  /status/CODE    an empty response with that status (e.g. /status/503)
  /chunked/NAME   the file NAME sent with Transfer-Encoding: chunked
                  (no Content-Length: size limits must be enforced by
                  counting)
  anything else   the file under --root, or 404

Exits by itself after --lifetime seconds (default 300) so a crashed test
never leaves it behind. Python 3 standard library only.
"""
import argparse
import http.server
import os
import posixpath
import socketserver
import sys
import threading
import time
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ladderd-test-httpd/1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("httpd: " + (fmt % args) + "\n")

    def _empty(self, code, headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _file(self, rel):
        # Resolve inside root only: no "..", no absolute escapes.
        rel = posixpath.normpath("/" + rel).lstrip("/")
        path = os.path.join(self.server.root, rel)
        if not rel or not os.path.isfile(path):
            return None
        return path

    def _send_file(self, path, chunked=False, head=False):
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4"
                         if path.endswith(".mp4") else
                         "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        if head:
            return
        with open(path, "rb") as f:
            while True:
                buf = f.read(64 * 1024)
                if not buf:
                    break
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(buf), buf))
                else:
                    self.wfile.write(buf)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _route(self, head=False):
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        parts = [p for p in path.split("/") if p]
        try:
            if len(parts) == 2 and parts[0] == "redirect":
                n = int(parts[1])
                loc = "/redirect/%d" % (n - 1) if n > 0 else "/big"
                return self._empty(302, [("Location", loc)])
            if len(parts) == 2 and parts[0] == "status":
                return self._empty(int(parts[1]))
        except ValueError:
            return self._empty(400)
        if parts == ["location"]:
            to = urllib.parse.parse_qs(url.query).get("to")
            if not to:
                return self._empty(400)
            return self._empty(302, [("Location", to[0])])
        if parts == ["slow"]:
            n = self.server.slow_bytes
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            if head:
                return
            for _ in range(n):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.5)
            return
        if len(parts) >= 2 and parts[0] == "chunked":
            f = self._file("/".join(parts[1:]))
            if f is None:
                return self._empty(404)
            return self._send_file(f, chunked=True, head=head)
        f = self._file(path)
        if f is None:
            return self._empty(404)
        return self._send_file(f, head=head)

    def do_GET(self):
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (size limit, timeout): expected in tests.
            self.close_connection = True

    def do_HEAD(self):
        self._route(head=True)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="directory to serve")
    ap.add_argument("--port-file", required=True,
                    help="where to write the chosen port")
    ap.add_argument("--lifetime", type=float, default=300,
                    help="exit after this many seconds (default 300)")
    ap.add_argument("--slow-bytes", type=int, default=20,
                    help="length of /slow (1 byte per 0.5 s)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    srv = Server(("127.0.0.1", 0), Handler)
    srv.root = os.path.abspath(args.root)
    srv.slow_bytes = args.slow_bytes
    srv.verbose = args.verbose

    # The watchdog: a timer thread, so a test killed with SIGKILL (its
    # EXIT trap never ran) still does not leak the server.
    t = threading.Timer(args.lifetime, lambda: os._exit(0))
    t.daemon = True
    t.start()

    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.replace(tmp, args.port_file)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
