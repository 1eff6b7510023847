#!/bin/sh
# The README's demo: install what is needed, build, make a sample video,
# run ladderd on it with the built-in default profile, show the package
# and the task's status. Everything lands in ./demo/ (safe to re-run).
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
sh tests/install-deps.sh
[ -x configure ] || autoreconf -fi >/dev/null 2>&1
mkdir -p _build
(cd _build && { [ -f Makefile ] || ../configure -q; } && make -j"$(nproc)" >/dev/null)
LADDERD="$top/_build/ladderd"
D="$top/demo"
mkdir -p "$D"
if [ ! -s "$D/sample.mp4" ]; then
	echo "making a 12 s 1280x720 sample video: $D/sample.mp4"
	ffmpeg -nostdin -hide_banner -loglevel error -y \
		-f lavfi -i testsrc2=size=1280x720:rate=30:duration=12 \
		-f lavfi -i sine=frequency=440:sample_rate=48000:duration=12 \
		-c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -shortest \
		"$D/sample.mp4"
fi
exec sh "$top/contrib/demo-daemon.sh" "$LADDERD" "$D"
