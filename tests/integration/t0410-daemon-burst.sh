#!/bin/sh
# A burst of manifests dropped at once (one rename each, as fast as the
# shell goes) is taken without loss: every task completes exactly once.
# LADDERD_BURST sets the count (default 1000).
. "$(dirname "$0")/lib.sh"
trap 'kill_all; _cleanup' EXIT
N=${LADDERD_BURST:-1000}

write_conf "$T/ladderd.conf" "
max_jobs = 4;
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
profiles = { $(quick_profile "" 0) };"
mkdir -p "$T/ingest/media" "$T/stage"
"$PY" - "$T" "$N" <<'PY'
import json, os, sys
t, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    open(f"{t}/ingest/media/f{i}.mov", "w").write(str(i))
    json.dump({"task_id": f"burst-{i:04d}", "source": f"media/f{i}.mov"},
              open(f"{t}/stage/m{i:04d}.json", "w"))
PY
start_daemon "$T/ladderd.conf"
start=$(date +%s)
for f in "$T"/stage/*.json; do mv "$f" "$T/ingest/"; done
queued_all() {
	[ "$(ls "$T/status" | grep -c '^burst-')" -ge "$N" ]
}
wait_for 120 queued_all
ok "all $N manifests were taken (status exists for each)" queued_all
done_count() { ls "$T/publish" | grep -c '^burst-'; }
wait_for $((N / 4 + 60)) sh -c "[ \$(ls '$T/publish' | grep -c '^burst-') -ge $N ]"
took=$(( $(date +%s) - start ))
is "$(done_count)" "$N" "all $N tasks published (${took}s)"
complete=$(cat "$T"/status/burst-*/status.json | grep -c '"state":[[:space:]]*"complete"')
is "$complete" "$N" "every status.json says complete"
twice=$("$PY" - "$T" <<'PY'
import json, glob, sys
bad = 0
for f in glob.glob(sys.argv[1] + "/status/burst-*/events.ndjson"):
    ev = [json.loads(l) for l in open(f)]
    if sum(1 for e in ev if e["state"] == "queued") != 1 or \
       sum(1 for e in ev if e["state"] == "complete") != 1 or \
       [e["seq"] for e in ev] != list(range(1, len(ev) + 1)):
        bad += 1
print(bad)
PY
)
is "$twice" 0 "no task was queued or completed twice; seq has no gaps"
is "$(ls "$T/failed" | wc -l | tr -d ' ')" 0 "nothing failed"
is "$(ls -A "$T/ingest" | grep -v '^media$' | wc -l | tr -d ' ')" 0 "the ingest folder is empty"
stop_daemon
is "$?" 0 "daemon stops cleanly"
done_testing
