#!/usr/bin/env python3
"""contrib/webhook-receiver/receiver.py - a small receiver for ladderd's
status webhooks, and an example of how to check them.

ladderd follows the Standard Webhooks convention (https://www.standardwebhooks.com;
README.md, "Webhooks"). Every status event is one HTTP POST:

    POST /your/path HTTP/1.1
    Content-Type: application/json
    webhook-id: trailer-2026-12          stable per event: "<task_id>-<seq>"
    webhook-timestamp: 1764324000        unix seconds of this attempt
    webhook-signature: v1,<base64 HMAC-SHA256, see below>   (with a secret)

    {"task_id":"trailer-2026","seq":12,"state":"transcoding",...}

Answer any 2xx status to acknowledge it. Anything else (or no answer within
ladderd's notify.timeout) makes ladderd retry later with backoff, so the
same event can arrive more than once: drop duplicates by webhook-id. Events
of one task arrive in seq order.

How to verify a signature (see verify() below, it is the whole recipe):

  1. The key: if the configured secret (ladderd.conf, notify.secret) starts
     with "whsec_", the key is the base64 decoding of the rest; otherwise
     it is the secret's own bytes.
  2. The signed content is  webhook-id + "." + webhook-timestamp + "." + body
     where body is the request body EXACTLY as received: the raw bytes, not
     JSON you parsed and serialised again (that changes spacing and order).
  3. Compute base64(HMAC-SHA256(key, signed content)).
  4. webhook-signature is a space-separated list of "v1,<base64>" entries;
     accept the request if one v1 entry equals yours. Compare in constant
     time (hmac.compare_digest) so the comparison leaks nothing.
  5. Reject timestamps far from your clock (here: more than 5 minutes), so a
     recorded request cannot be replayed later.

Usage:
  receiver.py [--port P] [--port-file F] [--secret S] [--out FILE]
              [--fail-first N] [--lifetime SECONDS] [--quiet]

  For example, with notify = { webhook = "http://127.0.0.1:8080/hook";
  secret = "whsec_..."; } in ladderd.conf:

      python3 contrib/webhook-receiver/receiver.py --port 8080 \
          --secret whsec_... --out events.jsonl

  It binds 127.0.0.1 only, prints "receiver: listening on
  http://127.0.0.1:PORT/ until stopped" on stdout, logs one line per
  request on stderr and runs until Ctrl-C or SIGTERM.

  --port P        port on 127.0.0.1 (default 0: any free port, printed)
  --port-file F   also write the port it listens on to F
  --secret S      verify signatures and timestamps; 401 when they are wrong
  --out FILE      append one JSON line per accepted request:
                  {"id": <webhook-id>, "timestamp": <webhook-timestamp>,
                   "signature": <webhook-signature or null>,
                   "received": <unix seconds, float>,
                   "body": <the body, parsed>}; duplicates are kept, so a
                  test can see them
  --fail-first N  answer 503 to the first N requests (to exercise retries)
  --lifetime S    exit by itself after S seconds (default 0: run until
                  stopped); tests pass it so a crashed test never leaves
                  it behind

Python 3 standard library only. The integration test
tests/integration/t0420-webhook-outbox.sh uses it.
"""
import argparse
import base64
import hashlib
import hmac
import http.server
import json
import os
import signal
import sys
import threading
import time

# Timestamps further than this from our clock are refused (replays).
TOLERANCE = 5 * 60
# Bodies larger than this are refused; status events are a few KiB.
MAX_BODY = 16 * 1024 * 1024


def signing_key(secret):
    """The HMAC key for a configured secret (step 1 above)."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode()


def verify(key, msg_id, timestamp, body, signature_header, now=None):
    """Check one request (steps 2 to 5 above).

    key: bytes from signing_key(); msg_id, timestamp, signature_header: the
    header values (str); body: the raw request body (bytes). Returns None
    when the request is genuine, else the reason it is not.
    """
    if not msg_id or not timestamp or not signature_header:
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        ts = int(timestamp)
    except ValueError:
        return "webhook-timestamp is not an integer"
    now = time.time() if now is None else now
    if abs(now - ts) > TOLERANCE:
        return "webhook-timestamp is more than %d s off" % TOLERANCE
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(
        hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for entry in signature_header.split():
        version, _, sig = entry.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return None
    return "no matching v1 signature"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real receiver
    server_version = "ladderd-webhook-receiver/1"

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("receiver: " + (fmt % args) + "\n")

    def _answer(self, code, text=""):
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._answer(405, "POST webhooks here\n")

    def do_POST(self):
        srv = self.server
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._answer(411, "Content-Length required\n")
            return
        if length < 0 or length > MAX_BODY:
            self._answer(413, "body too large\n")
            self.close_connection = True
            return
        body = self.rfile.read(length)  # the raw bytes: they are signed
        msg_id = self.headers.get("webhook-id", "")
        timestamp = self.headers.get("webhook-timestamp", "")

        with srv.lock:
            srv.requests += 1
            fail = srv.requests <= srv.fail_first
        if fail:
            self.log_message("failing request %d on purpose (503): %s",
                             srv.requests, msg_id)
            self._answer(503, "failing on purpose\n")
            return
        if srv.key is not None:
            why = verify(srv.key, msg_id, timestamp, body,
                         self.headers.get("webhook-signature", ""))
            if why is not None:
                # Said even with --quiet: a refusal is what to look into.
                sys.stderr.write("receiver: rejected %s: %s\n" % (msg_id, why))
                self._answer(401, why + "\n")
                return
        try:
            parsed = json.loads(body)
        except ValueError:
            self._answer(400, "body is not JSON\n")
            return
        # Record before answering: a 2xx promises the event is kept.
        if srv.out is not None:
            line = json.dumps({"id": msg_id, "timestamp": timestamp,
                               "signature": self.headers.get(
                                   "webhook-signature"),
                               "received": time.time(),
                               "body": parsed}, sort_keys=True)
            with srv.lock:
                with open(srv.out, "a") as f:
                    f.write(line + "\n")
                    f.flush()
                    os.fsync(f.fileno())
        self.log_message("accepted %s", msg_id)
        self.send_response(204)
        self.end_headers()


def write_port_file(path, port):
    # temp file + rename: a test polling for the file never reads half of it
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, path)


def stop_on_signal(signum, frame):
    raise KeyboardInterrupt


def main():
    ap = argparse.ArgumentParser(
        description="Receive (and verify) ladderd status webhooks.")
    ap.add_argument("--port-file", help="write the listening port here")
    ap.add_argument("--port", type=int, default=0,
                    help="port on 127.0.0.1 (default: any free one)")
    ap.add_argument("--secret", help="notify.secret of ladderd.conf")
    ap.add_argument("--out", help="append accepted events here (JSON lines)")
    ap.add_argument("--fail-first", type=int, default=0, metavar="N",
                    help="answer 503 to the first N requests")
    ap.add_argument("--lifetime", type=float, default=0,
                    help="exit after this many seconds (default 0: run "
                    "until stopped)")
    ap.add_argument("--quiet", action="store_true",
                    help="no log line per request on stderr "
                         "(refused signatures are still logged)")
    args = ap.parse_args()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.lock = threading.Lock()
    srv.requests = 0
    srv.fail_first = args.fail_first
    srv.key = signing_key(args.secret) if args.secret else None
    srv.out = args.out
    srv.quiet = args.quiet
    port = srv.server_address[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    if args.lifetime > 0:
        timer = threading.Timer(args.lifetime, srv.shutdown)
        timer.daemon = True
        timer.start()
    # SIGTERM stops it as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, stop_on_signal)
    print("receiver: listening on http://127.0.0.1:%d/ %s%s" % (
        port, "for %g s" % args.lifetime if args.lifetime > 0 else
        "until stopped (Ctrl-C)",
        ", verifying signatures" if srv.key is not None else
        ", NOT verifying signatures (no --secret)"), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
