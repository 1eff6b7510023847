#!/usr/bin/env python3
"""Print the system call numbers a systemd SystemCallFilter= allows.

Usage: syscall_allow.py SET... [~SET...]

Reads every set from `systemd-analyze syscall-filter` (nested sets
expanded), adds @default as systemd does for an allow list, takes the
union of the sets named, removes the ~SETs (a later ~ line of the unit),
and maps names to this machine's numbers with the C preprocessor
(<sys/syscall.h>; $CC, default cc). Names this ABI lacks are skipped.
"""
import os
import re
import subprocess
import sys

out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"],
                     check=True, capture_output=True, text=True).stdout
sets, cur = {}, None
for line in out.splitlines():
    if line.startswith("@"):
        cur = sets.setdefault(line.strip(), [])
    elif cur is not None and line.strip() and not line.strip().startswith("#"):
        cur.append(line.strip())


def expand(name, seen=None):
    seen = set() if seen is None else seen
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    seen.add(name)
    r = set()
    for m in sets[name]:
        r |= expand(m, seen)
    return r


allow, deny = expand("@default"), set()
for a in sys.argv[1:]:
    if a.startswith("~"):
        deny |= expand(a[1:])
    else:
        allow |= expand(a)
names = allow - deny
cpp = subprocess.run([os.environ.get("CC", "cc"), "-dM", "-E", "-"],
                     input="#include <sys/syscall.h>\n", check=True,
                     capture_output=True, text=True).stdout
nr = {m.group(1): int(m.group(2)) for m in
      re.finditer(r"#define __NR_(\w+) (\d+)$", cpp, re.M)}
for n in sorted(names):
    if n in nr:
        print(nr[n])
