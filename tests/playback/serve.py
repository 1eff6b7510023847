#!/usr/bin/env python3
"""serve.py - a small HTTP server for playing a ladderd package in a browser.

    serve.py ROOT [--port-file FILE] [--port N] [--lifetime SECONDS] [--log]

Listens on 127.0.0.1 (port 0 = any free port; the port is written to
--port-file once the socket listens, write-temp + rename, so a reader never
sees half a number) and serves:

    /pkg/...      the package folder ROOT (master.m3u8, manifest.mpd, rungs)
    /lib/hls.js   /lib/dash.js   /lib/shaka.js
                  the players' dist files from tests/playback/node_modules
                  (run tests/playback/install.sh first)
    /...          the files of tests/playback itself (page.html, harness.js)

with the MIME types players check (.m3u8 application/vnd.apple.mpegurl, .mpd
application/dash+xml, .m4s video/iso.segment, .mp4 video/mp4, .ts video/mp2t,
.js text/javascript), `Access-Control-Allow-Origin: *`, no caching, and no
directory listings. It exits after --lifetime seconds (default 600), so a
test that dies never leaves it behind. Python 3 standard library only;
contrib/preview imports it.
"""
import argparse
import http.server
import os
import posixpath
import socketserver
import sys
import threading
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_MODULES = os.path.join(HERE, 'node_modules')

MIME = {
    '.m3u8': 'application/vnd.apple.mpegurl',
    '.mpd': 'application/dash+xml',
    '.m4s': 'video/iso.segment',
    '.mp4': 'video/mp4',
    '.m4a': 'audio/mp4',
    '.ts': 'video/mp2t',
    '.js': 'text/javascript',
    '.mjs': 'text/javascript',
    '.map': 'application/json',
    '.json': 'application/json',
    '.html': 'text/html; charset=utf-8',
    '.css': 'text/css',
    '.png': 'image/png',
    '.jpg': 'image/jpeg',
    '.vtt': 'text/vtt',
}

# The players' browser builds, by the name the pages load them under.
PLAYER_LIBS = {
    'hls.js': 'hls.js/dist/hls.min.js',
    'dash.js': 'dashjs/dist/modern/umd/dash.all.min.js',
    'shaka.js': 'shaka-player/dist/shaka-player.compiled.js',
}


def players_installed(node_modules=NODE_MODULES):
    """The names of PLAYER_LIBS whose file is missing (empty: all there)."""
    return [n for n, p in PLAYER_LIBS.items()
            if not os.path.isfile(os.path.join(node_modules, p))]


def safe_join(root, rel):
    """ROOT/rel, or None when rel leaves ROOT (.., absolute, NUL)."""
    rel = posixpath.normpath('/' + rel).lstrip('/')
    if '\0' in rel or rel.startswith('..'):
        return None
    path = os.path.join(root, *[p for p in rel.split('/') if p])
    root_real = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != root_real and not real.startswith(root_real + os.sep):
        return None
    return path


class Handler(http.server.BaseHTTPRequestHandler):
    # Set per server (see make_server): mounts = [(prefix, folder)], files =
    # {url path: file}, log = bool.
    server_version = 'ladderd-serve/1'
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *args):
        if self.server.log:
            sys.stderr.write('serve: %s\n' % (fmt % args))

    def end_headers(self):
        self.send_header('Access-Control-Allow-Origin', '*')
        self.send_header('Access-Control-Allow-Headers', '*')
        self.send_header('Access-Control-Expose-Headers', 'Content-Length')
        self.send_header('Cache-Control', 'no-store')
        super().end_headers()

    def resolve(self):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path in self.server.files:
            return self.server.files[path]
        for prefix, folder in self.server.mounts:
            if path == prefix.rstrip('/') or path.startswith(prefix):
                return safe_join(folder, path[len(prefix):])
        return None

    def send_plain(self, code, text):
        body = (text + '\n').encode()
        self.send_response(code)
        self.send_header('Content-Type', 'text/plain; charset=utf-8')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def do_OPTIONS(self):
        self.send_response(204)
        self.send_header('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS')
        self.send_header('Content-Length', '0')
        self.end_headers()

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.resolve()
        if path is None or not os.path.isfile(path):
            self.send_plain(404, 'not found: %s' % self.path)
            return
        try:
            with open(path, 'rb') as f:
                data = f.read()
        except OSError as e:
            self.send_plain(500, 'cannot read: %s' % e)
            return
        ext = os.path.splitext(path)[1].lower()
        self.send_response(200)
        self.send_header('Content-Type', MIME.get(ext, 'application/octet-stream'))
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        if self.command != 'HEAD':
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # a player aborted a request (seek, rung switch)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(root, port=0, pages=HERE, node_modules=NODE_MODULES,
                extra_files=None, log=False):
    """A Server on 127.0.0.1:port for package ROOT (see the module doc)."""
    srv = Server(('127.0.0.1', port), Handler)
    srv.mounts = [('/pkg/', os.path.abspath(root)),
                  ('/', os.path.abspath(pages))]
    srv.files = {'/lib/' + n: os.path.join(node_modules, p)
                 for n, p in PLAYER_LIBS.items()}
    srv.files.update(extra_files or {})
    srv.log = log
    return srv


def write_port_file(path, port):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write('%d\n' % port)
    os.replace(tmp, path)


def serve(srv, lifetime):
    """Serve until lifetime seconds have passed (or forever when <= 0)."""
    if lifetime > 0:
        timer = threading.Timer(lifetime, srv.shutdown)
        timer.daemon = True
        timer.start()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('root', help='the package folder (OUT/TASK_ID)')
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--port-file', help='write the port number here')
    ap.add_argument('--lifetime', type=float, default=600,
                    help='exit after this many seconds (0: never)')
    ap.add_argument('--log', action='store_true', help='log every request')
    a = ap.parse_args(argv)
    if not os.path.isdir(a.root):
        ap.error('not a folder: %s' % a.root)
    srv = make_server(a.root, a.port, log=a.log)
    port = srv.server_address[1]
    if a.port_file:
        write_port_file(a.port_file, port)
    print('serving %s on http://127.0.0.1:%d/pkg/' % (a.root, port), flush=True)
    serve(srv, a.lifetime)
    return 0


if __name__ == '__main__':
    sys.exit(main())
