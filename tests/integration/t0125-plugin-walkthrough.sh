#!/bin/sh
# t0125-plugin-walkthrough: the README's "Writing a stage plugin" works
# exactly as written. The example stage and its `cc` line are taken from
# README.md itself, compiled out of tree against the built header and
# ladderd-stage.pc (the header laid out where the .pc file says it is
# installed, under a sysroot), warning-free; put in a folder of its own on
# stage_dir with the README's workflow line, `check-config` passes (the
# built-in stages are still found after the configured folders), `ladderd
# stage` applies min_duration from the workflow, and a real `ladderd run`
# fails a short clip with the stage's message and publishes a long enough one.
. "$(dirname "$0")/lib.sh"

require cc pkg-config ffmpeg
README="$LADDERD_SRC/README.md"
PC_DIR="$LADDERD_BUILD/stages"

# The plugin section's C block and commands, verbatim.
sed -n '/^## Writing a stage plugin/,/^## /p' "$README" >"$T/section.md"
awk '/^```c$/ { on = 1; next } /^```$/ { if (on) exit } on' "$T/section.md" \
	>"$T/watermark_check.c"
cc_line=$(grep -m1 '^cc -shared' "$T/section.md")
wf_line=$(grep -m1 '^#   pre = ' "$T/section.md" | sed 's/^#   //')
like "$(cat "$T/watermark_check.c")" 'LADDERD_STAGE_DEFINE\("watermark_check"' \
	"the README has the example stage"
like "$cc_line" 'pkg-config --cflags --libs ladderd-stage' "and its cc line"
like "$wf_line" 'stage = "watermark_check"; args = \{ min_duration = 5\.0; \}' \
	"and its workflow line"

# The header where the built .pc file says it is installed, under a sysroot.
incdir=$(PKG_CONFIG_PATH=$PC_DIR pkg-config --variable=includedir ladderd-stage)
mkdir -p "$T/sys$incdir/ladderd" "$T/plugins"
cp "$LADDERD_SRC/stages/stage.h" "$T/sys$incdir/ladderd/stage.h"
(cd "$T" && PKG_CONFIG_PATH=$PC_DIR PKG_CONFIG_SYSROOT_DIR=$T/sys \
	CFLAGS= sh -c "$cc_line -Wall -Wextra -Werror") >"$T/cc.log" 2>&1
ok "the README's cc line builds it out of tree, warning-free" test -s "$T/watermark_check.so"
[ -s "$T/watermark_check.so" ] || cat "$T/cc.log" | sed 's/^/# /'
mv "$T/watermark_check.so" "$T/plugins/"

# my.conf: the plugin's folder on stage_dir, nothing else about stages.
mkdir -p "$T/spool" "$T/publish" "$T/status" "$T/failed"
cat >"$T/my.conf" <<CONF
spool = "$T/spool";
publish = "$T/publish";
status = "$T/status";
failed = "$T/failed";
stage_dir = "$T/plugins";
workflow = {
  $wf_line
};
profiles = { default = { segment_duration = 1; dash = false;
  ladder = ( { name = "90p"; height = 90; bitrate = 100; } ); }; };
CONF
"$LADDERD" check-config -c "$T/my.conf" >"$T/check.out" 2>&1
is "$?" 0 "check-config passes with the plugin's folder as stage_dir"
like "$(cat "$T/check.out")" "  watermark_check +pre +v1\\.0 $T/plugins/watermark_check\\.so" \
	"it loads the plugin from that folder"
like "$(cat "$T/check.out")" "  transcode +rendition +v" "and still finds the built-in stages"
like "$(cat "$T/check.out")" "stage_dir +$T/plugins:" \
	"the effective stage_dir shows the configured folder first, then the built-in one"

echo '{ "probe": { "duration": 3.0 } }' >"$T/ctx.json"
"$LADDERD" stage -c "$T/my.conf" watermark_check "$T/ctx.json" >"$T/stage.out" 2>"$T/stage.err"
is "$?" 1 "ladderd stage: a 3 s context fails (min_duration 5.0 from the workflow)"
like "$(cat "$T/stage.err")" "source is 3\\.0 s, shorter than 5\\.0 s" "with the stage's message"

mkclip "$T/short.mp4" -f lavfi -i testsrc2=size=160x90:rate=25:duration=2 \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p
mkclip "$T/long.mp4" -f lavfi -i testsrc2=size=160x90:rate=25:duration=6 \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p
"$LADDERD" run -c "$T/my.conf" "$T/short.mp4" -o "$T/out" --task-id short >/dev/null 2>"$T/short.err"
is "$?" 1 "ladderd run: a 2 s source fails in the plugin"
like "$(cat "$T/short.err")" "failed: watermark_check: source is 2\\.0 s, shorter than 5\\.0 s" \
	"with its message"
"$LADDERD" run -c "$T/my.conf" "$T/long.mp4" -o "$T/out" --task-id long >/dev/null 2>"$T/long.err"
is "$?" 0 "ladderd run: a 6 s source passes the plugin and is published"
is "$(json "$T/out/.ladderd/status/long/status.json" 'd["state"]')" complete "status complete"
done_testing
