#!/bin/sh
# Finding 9 of issue 9: the probe refuses a picture larger than the
# profile allows, before the decoders allocate it: width and height
# (max_width, max_height: 8192 by default), their product (max_pixels:
# 35389440 = 8192x4320 by default), the displayed size after the sample
# aspect ratio, and the ratio itself (max_sar: 1/4..4). Each with a clear
# refusal in the task's status; a picture inside the limits still passes.
. "$(dirname "$0")/lib.sh"
require ffmpeg
trap 'kill_all; _cleanup' EXIT

write_conf "$T/ladderd.conf" "
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; },
          { path = \"$T/small\"; profile = \"small\"; } );
profiles = {
  quick = {
    ladder = ( { name = \"only\"; height = 360; bitrate = 500; } );
    workflow = { pre = ( \"download\", \"probe\" ); rendition = ( \"t_record\" ); post = ( \"t_record\", \"publish\" ); };
  };
  small = {
    max_width = 1000; max_height = 1000; max_pixels = 100000;
    ladder = ( { name = \"only\"; height = 360; bitrate = 500; } );
    workflow = { pre = ( \"download\", \"probe\" ); rendition = ( \"t_record\" ); post = ( \"t_record\", \"publish\" ); };
  };
};"
mkdir -p "$T/small"
F="-c:v ffv1 -f matroska"
mkclip "$T/wide.mkv" -f lavfi -i color=size=9000x64:rate=25:duration=0.12 $F &&
mkclip "$T/sar.mkv" -f lavfi -i testsrc2=size=320x240:rate=25:duration=0.12 -vf setsar=10 $F &&
mkclip "$T/anamorphic.mkv" -f lavfi -i color=size=4000x1000:rate=25:duration=0.12 -vf setsar=3 $F &&
mkclip "$T/ok.mkv" -f lavfi -i testsrc2=size=640x360:rate=25:duration=0.12 $F ||
	bail_out "cannot make test clips"

# --- the stage alone, default limits -------------------------------------
probe() { printf '{ "input": { "path": "%s" } }\n' "$2" >"$T/$1.json"; stage probe "$1"; }
probe wide "$T/wide.mkv"
ok "a 9000x64 picture is refused" [ "$rc" != 0 ]
like "$msg" "picture 9000x64 is larger than allowed \(max_width 8192, max_height 8192, max_pixels 35389440\)" "with the limits it broke"
probe sar "$T/sar.mkv"
ok "a sample aspect ratio of 10:1 is refused" [ "$rc" != 0 ]
like "$msg" "sample aspect ratio 10:1 is outside 1:4..4:1 \(max_sar 4\)" "and says so"
probe ana "$T/anamorphic.mkv"
ok "a 4000x1000 picture shown 12000 wide is refused" [ "$rc" != 0 ]
like "$msg" "displayed picture 12000x1000 is larger than allowed" "and says so"
probe ok "$T/ok.mkv"
is "$rc" 0 "a 640x360 picture passes"

# --- the daemon: per-profile limits, refusal in the status ---------------
start_daemon "$T/ladderd.conf"
cp "$T/ok.mkv" "$T/small/.ok.mkv" && mv "$T/small/.ok.mkv" "$T/small/big.mkv"
cp "$T/ok.mkv" "$T/ingest/.ok.mkv" && mv "$T/ingest/.ok.mkv" "$T/ingest/fine.mkv"
wait_for 20 sh -c "ls '$T'/failed/big-*/error.json"
id=$(ls "$T/failed" | grep '^big-' | head -n 1)
is "$(state_of "$id")" failed "a 640x360 drop fails in a profile with max_pixels 100000"
like "$(json "$T/status/$id/status.json" 'd["error"]["message"]')" \
	"picture 640x360 is larger than allowed \(max_width 1000, max_height 1000, max_pixels 100000\)" \
	"its status says why"
ok "nothing is published for it" test ! -e "$T/publish/$id"
wait_for 20 sh -c "ls '$T/publish' | grep -q '^fine-'"
ok "the same clip passes with the default limits" sh -c "ls '$T/publish' | grep -q '^fine-'"
stop_daemon
is "$?" 0 "daemon stops cleanly"

printf 'profiles = { p = { max_width = 8; }; };\n' >"$T/bad.conf"
out=$("$LADDERD" check-config -c "$T/bad.conf" 2>&1)
is "$?" 1 "a max_width below 16 is refused"
like "$out" "bad.conf:1: 'max_width' is 8, must be in 16\.\." "with FILE:LINE"
done_testing
