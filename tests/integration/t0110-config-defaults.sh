#!/bin/sh
# etc/ladderd.conf documents the built-in defaults: loading it gives the
# same effective settings as an empty file. And check-config exits 0 on it,
# listing every stage, and 1 with FILE:LINE on a bad file.
. "$(dirname "$0")/lib.sh"

: >"$T/empty.conf"
"$LADDERD" check-config -c "$LADDERD_SRC/etc/ladderd.conf" >"$T/etc.out" 2>&1
is "$?" 0 "check-config accepts etc/ladderd.conf"
"$LADDERD" check-config -c "$T/empty.conf" >"$T/empty.out" 2>&1
is "$?" 0 "check-config accepts an empty file"
is "$(grep -v '^config ' "$T/etc.out" | md5sum)" "$(grep -v '^config ' "$T/empty.out" | md5sum)" \
	"etc/ladderd.conf sets exactly the built-in defaults"
for s in download probe hls_header target_size transcode chunk_hls hls_info notify \
	hls_footer chunk_dash verify publish; do
	like "$(cat "$T/etc.out")" "  $s +(pre|rendition|post) +v" "check-config resolves stage $s"
done
printf 'max_jobs = 2;\nprofiles = { p = { ladder = ( { name = "x"; height = 100; } ); }; };\n' >"$T/bad.conf"
out=$("$LADDERD" check-config -c "$T/bad.conf" 2>&1)
is "$?" 1 "check-config exits 1 on a bad file"
like "$out" "bad.conf:2: missing required setting 'bitrate'" "and says FILE:LINE: reason"
printf 'workflow = { pre = ( "no_such_stage" ); };\n' >"$T/nostage.conf"
out=$("$LADDERD" check-config -c "$T/nostage.conf" 2>&1)
is "$?" 1 "check-config exits 1 when a stage cannot be loaded"
like "$out" "stage 'no_such_stage' not found in stage path" "and names the stage"
done_testing
