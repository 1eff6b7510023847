#!/usr/bin/env python3
"""tests/tools/promcheck.py FILE: a strict reader of the Prometheus text
exposition format (0.0.4) as node_exporter's textfile collector reads it.
Exits 1 with the reasons when the file breaks a rule; otherwise prints the
samples as JSON ({"name{labels}": value}) for the test to compare.
Rules: every line is '# HELP name text', '# TYPE name type' or a sample
'name[{label="value",...}] value'; names and label names are valid; a
family's TYPE comes once, before its samples; counter names end in _total;
a histogram has cumulative _bucket{le=...} samples ending with le="+Inf",
equal to _count, and a _sum; no series twice; the file ends in a newline."""
import json
import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{(?:%s)(?:,%s)*\})? (\S+)$" % (NAME, LABEL, LABEL))
errs = []
text = open(sys.argv[1]).read()
if not text.endswith("\n"):
    errs.append("no newline at the end")
types, helps, samples = {}, set(), {}
buckets = {}
for n, line in enumerate(text.splitlines(), 1):
    if line.startswith("# HELP "):
        parts = line.split(" ", 3)
        if len(parts) < 4 or not re.fullmatch(NAME, parts[2]) or parts[2] in helps:
            errs.append("%d: bad or repeated HELP" % n)
        helps.add(parts[2])
        continue
    if line.startswith("# TYPE "):
        parts = line.split(" ")
        if len(parts) != 4 or not re.fullmatch(NAME, parts[2]) or \
                parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped") or \
                parts[2] in types:
            errs.append("%d: bad or repeated TYPE" % n)
        else:
            types[parts[2]] = parts[3]
            if parts[3] == "counter" and not parts[2].endswith("_total"):
                errs.append("%d: counter %s does not end in _total" % (n, parts[2]))
        continue
    if line.startswith("#") or line == "":
        errs.append("%d: unexpected line %r" % (n, line))
        continue
    m = SAMPLE.match(line)
    if not m:
        errs.append("%d: not a sample: %r" % (n, line))
        continue
    name, labels, value = m.group(1), m.group(2) or "", m.group(3)
    try:
        v = float(value)
    except ValueError:
        errs.append("%d: bad value %r" % (n, value))
        continue
    fam = name
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and types.get(name[: -len(suf)]) == "histogram":
            fam = name[: -len(suf)]
    if fam not in types:
        errs.append("%d: %s has no TYPE before it" % (n, name))
    key = name + labels
    if key in samples:
        errs.append("%d: %s twice" % (n, key))
    samples[key] = v
    if types.get(fam) == "histogram" and name.endswith("_bucket"):
        le = re.search(r'le="([^"]*)"', labels)
        if not le:
            errs.append("%d: bucket without le" % n)
        else:
            buckets.setdefault(fam, []).append(
                (math.inf if le.group(1) == "+Inf" else float(le.group(1)), v))
    if types.get(fam) == "counter" and v < 0:
        errs.append("%d: negative counter" % n)
for fam, t in types.items():
    if t != "histogram":
        continue
    b = buckets.get(fam, [])
    if not b or b[-1][0] != math.inf:
        errs.append("%s: no +Inf bucket last" % fam)
        continue
    if any(b[i][0] >= b[i + 1][0] or b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
        errs.append("%s: buckets not ascending and cumulative" % fam)
    if samples.get(fam + "_count") != b[-1][1] or fam + "_sum" not in samples:
        errs.append("%s: _count differs from +Inf, or no _sum" % fam)
if errs:
    print("\n".join(errs))
    sys.exit(1)
print(json.dumps(samples))
