#!/bin/sh
# The daemon's own binary stays lean: no libav (and so none of the X11,
# VA-API, VDPAU, OpenCL stack libavutil brings), linked --as-needed.
. "$(dirname "$0")/lib.sh"
require readelf

needed=$(readelf -d "$LADDERD" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
ok "readelf lists the binary's libraries" test -n "$needed"
bad=$(printf '%s\n' "$needed" | grep -E '^lib(av|sw|postproc)' || true)
is "$bad" "" "bin/ladderd needs no libav*/libsw* library"
gfx=$(ldd "$LADDERD" | grep -Eo 'lib(X11|xcb|va|vdpau|mfx|OpenCL|drm)[^ ]*' || true)
is "$gfx" "" "no graphics or GPU library is mapped by the binary (ldd)"
# libcurl, libcrypto and librabbitmq belong to the notify worker alone.
bad=$(printf '%s\n' "$needed" | grep -E '^lib(curl|crypto|ssl|rabbitmq)' || true)
is "$bad" "" "bin/ladderd needs neither libcurl, libcrypto nor librabbitmq"
ok "the webhook worker is its own program" test -x "$LADDERD_BUILD/ladderd-notify"
ok "ladderd-notify links libcurl" \
	sh -c "readelf -d '$LADDERD_BUILD/ladderd-notify' | grep -q 'libcurl'"
ok "ladderd-notify links librabbitmq" \
	sh -c "readelf -d '$LADDERD_BUILD/ladderd-notify' | grep -q 'librabbitmq'"
# `ladderd notify` runs it: a bad option is answered with its usage.
"$LADDERD" notify --nosuch >"$T/n.out" 2>&1
like "$(cat "$T/n.out")" 'usage: ladderd notify' "ladderd notify execs the worker"
# The stages that decode and encode still do link libav.
ok "the transcode stage links libavcodec" \
	sh -c "readelf -d '$BUILD_STAGES/transcode.so' | grep -q 'libavcodec'"
# libav's log level is still set for the stages (stages/avlog.h): below
# errors (here the demuxer's "misdetection possible" warning) only when
# LADDERD_AV_LOG asks for it (48 = AV_LOG_DEBUG).
mkdir -p "$T/in"
# Fixed junk: random bytes may happen to look like another format (an MP3
# frame sync), and then libav has no "misdetection" to say.
"$PY" -c 'import random,sys; random.seed(1); sys.stdout.buffer.write(bytes(random.getrandbits(8) for _ in range(20000)))' >"$T/in/junk.mp4"
write_conf "$T/ladderd.conf"
printf '{"input":{"path":"%s"}}' "$T/in/junk.mp4" >"$T/ctx.json"
"$LADDERD" stage -c "$T/ladderd.conf" probe "$T/ctx.json" >"$T/out" 2>"$T/err"
like "$(cat "$T/out")" '"error"' "probe of junk reports an error in the context"
is "$(grep -c 'misdetection possible' "$T/err")" "0" "libav says nothing below errors by default"
LADDERD_AV_LOG=48 "$LADDERD" stage -c "$T/ladderd.conf" probe "$T/ctx.json" \
	>/dev/null 2>"$T/err2"
like "$(cat "$T/err2")" "misdetection possible" \
	"LADDERD_AV_LOG=48 turns libav's lower levels on"
done_testing
