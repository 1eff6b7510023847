#!/bin/sh
# Second half of the demo: run the daemon on demo/ingest, drop the sample,
# follow events.ndjson until the task is complete (bounded), show the
# package and the status, stop the daemon.
set -eu
LADDERD=$1
D=$2
mkdir -p "$D/ingest"
cat >"$D/ladderd.conf" <<CONF
# The demo's config: folders under demo/, everything else built in.
spool = "spool";
publish = "publish";
status = "status";
failed = "failed";
watch = ( { path = "ingest"; profile = "default"; } );
CONF
"$LADDERD" check-config -c "$D/ladderd.conf" | tail -n 14
# ladderd refuses to run as root unless told: the demo (often run as root
# in a container or CI) says so; a real install sets `user` instead.
allow=
[ "$(id -u)" = 0 ] && allow=--allow-root
"$LADDERD" -c "$D/ladderd.conf" $allow >"$D/daemon.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
i=0
while [ ! -s "$D/status/_daemon.json" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
# Write under a temporary name, then rename: the safe way to drop.
cp "$D/sample.mp4" "$D/ingest/.sample.mp4.part"
mv "$D/ingest/.sample.mp4.part" "$D/ingest/sample.mp4"
echo "dropped demo/ingest/sample.mp4; following its events:"
id=""
i=0
while [ -z "$id" ] && [ $i -lt 100 ]; do
	id=$(ls "$D/status" | grep '^sample-' | head -n 1 || true)
	sleep 0.1
	i=$((i + 1))
done
[ -n "$id" ] || { echo "the daemon did not take the drop; see $D/daemon.log"; exit 1; }
i=0
state=""
while [ $i -lt 1200 ]; do
	state=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"])' \
		"$D/status/$id/status.json" 2>/dev/null || true)
	[ "$state" = complete ] || [ "$state" = failed ] && break
	sleep 0.25
	i=$((i + 1))
done
python3 - "$D/status/$id/events.ndjson" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    extra = f" {e['quality']}" if e.get("quality") else ""
    prog = f" {e['progress']:.0%}" if isinstance(e.get("progress"), (int, float)) else ""
    print(f"  seq {e['seq']:3d}  {e['state']}{extra}{prog}")
PY
kill $pid
wait $pid || true
trap - EXIT
if [ "$state" != complete ]; then
	echo "task $id ended as '$state'; see $D/status/$id/status.json and $D/daemon.log"
	exit 1
fi
echo
echo "package: $D/publish/$id/"
ls -l "$D/publish/$id"
echo
echo "master playlist:"
cat "$D/publish/$id/master.m3u8"
echo
echo "status: $D/status/$id/status.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({k: d[k] for k in ("task_id","state","complete","outputs","renditions")}, indent=2))' "$D/status/$id/status.json"
echo
echo "play it: cd $D/publish && python3 -m http.server 8000 --bind 127.0.0.1"
echo "         then open http://127.0.0.1:8000/$id/master.m3u8 (or manifest.mpd)"
