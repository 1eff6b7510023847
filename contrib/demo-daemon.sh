#!/bin/sh
# Second half of the demo (until the daemon lands it runs `ladderd run`).
set -eu
LADDERD=$1
D=$2
"$LADDERD" run "$D/sample.mp4" -o "$D/publish" --task-id sample
echo
echo "package:"
ls -l "$D/publish/sample"
echo
echo "master playlist ($D/publish/sample/master.m3u8):"
cat "$D/publish/sample/master.m3u8"
echo
echo "status ($D/publish/.ladderd/status/sample/status.json):"
cat "$D/publish/.ladderd/status/sample/status.json"
