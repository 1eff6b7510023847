#!/usr/bin/env python3
"""mapsample.py - run a command and sample the shared libraries that its
ladderd processes map while it runs.

usage: mapsample.py --mark TEXT [--lib NAME]... [--timeout S] [--out FILE]
                    -- CMD...

Starts CMD, then until it exits (at most --timeout seconds, after which
it is killed and the exit status is 124) looks every few milliseconds at
every process whose command line contains TEXT (a test's trash folder:
the `ladderd run` process and its rung workers name it) and records, per
process, the highest number of lines of /proc/PID/maps naming a .so
(and of distinct such files), the highest RssFile and VmRSS (kB) of
/proc/PID/status, and which of the libraries named with --lib (a part of
a path, "libavfilter.so") it was ever seen mapping. One line per process on
stdout (or --out), sorted by pid:

    PID ROLE so=N so_files=N rss_file_kb=N vm_rss_kb=N LIB... (those it mapped, or "-")

(so: lines of maps naming a .so, as `grep -c '\.so' /proc/PID/maps`
counts them; so_files: distinct files among them).

ROLE is "run", or "rung:NAME" for `ladderd rung WORK_DIR NAME`. Exits with
CMD's status. A process that ends between two looks is simply missed:
the caller checks that the processes it cares about were seen.
"""
import argparse
import os
import subprocess
import sys
import time


def role_of(argv):
    if len(argv) >= 4 and argv[1] == "rung":
        return "rung:" + argv[3]
    if len(argv) >= 2:
        return argv[1]
    return "?"


def look(pid, mark, libs, seen):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            raw = f.read()
        if mark.encode() not in raw:
            return
        argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        if not argv or os.path.basename(argv[0]) not in ("ladderd", "lt-ladderd"):
            return
        with open("/proc/%d/maps" % pid) as f:
            maps = f.read()
        with open("/proc/%d/status" % pid) as f:
            status = f.read()
    except OSError:
        return  # gone, or not ours to read
    lines = [line for line in maps.splitlines() if ".so" in line]
    files = {line.split()[-1] for line in lines}
    rss = vm = 0
    for line in status.splitlines():
        if line.startswith("RssFile:"):
            rss = int(line.split()[1])
        elif line.startswith("VmRSS:"):
            vm = int(line.split()[1])
    rec = seen.get(pid)
    # A rung worker first seen between fork and exec reads as the `run`
    # that forked it, with its parent's mappings: what it maps after the
    # exec is a new record (the last program a pid runs is the one kept).
    if rec is None or rec["argv"] != argv:
        rec = seen[pid] = {"role": role_of(argv), "argv": argv, "so": 0,
                           "files": 0, "rss": 0, "vm": 0, "libs": set()}
    rec["so"] = max(rec["so"], len(lines))
    rec["files"] = max(rec["files"], len(files))
    rec["rss"] = max(rec["rss"], rss)
    rec["vm"] = max(rec["vm"], vm)
    for lib in libs:
        if lib in maps:
            rec["libs"].add(lib)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mark", required=True)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--lib", action="append", default=[])
    ap.add_argument("--out")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("no command")
    seen = {}
    me = os.getpid()
    child = subprocess.Popen(cmd)
    deadline = time.monotonic() + a.timeout
    rc = None
    while rc is None:
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) != me:
                look(int(name), a.mark, a.lib, seen)
        rc = child.poll()
        if rc is None and time.monotonic() > deadline:
            child.kill()
            child.wait()
            rc = 124
        elif rc is None:
            time.sleep(0.005)
    out = open(a.out, "w") if a.out else sys.stdout
    for pid in sorted(seen):
        r = seen[pid]
        print("%d %s so=%d so_files=%d rss_file_kb=%d vm_rss_kb=%d %s" % (
            pid, r["role"], r["so"], r["files"], r["rss"], r["vm"],
            " ".join(sorted(r["libs"])) or "-"), file=out)
    if a.out:
        out.close()
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main())
