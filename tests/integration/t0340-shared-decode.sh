#!/bin/sh
# The shared decode (fMP4 mode): one decoder feeds every video rung through
# shared memory. It runs as a thread of the top rung's worker. Its output
# matches per-rung decoding frame for frame, keyframes align, a rung
# retried after a failure falls back to decoding on its own, and the top
# rung failing does not take the decoder from the others.
. "$(dirname "$0")/lib.sh"
require ffmpeg ffprobe

write_conf "$T/ladderd.conf" "
profiles = {
  shared = {
    segment_duration = 1;
    video = { preset = \"ultrafast\"; };
    $LADDER3
  };
  alone = {
    segment_duration = 1;
    shared_decode = false;
    video = { preset = \"ultrafast\"; };
    $LADDER3
  };
  flaky = {
    segment_duration = 1;
    video = { preset = \"ultrafast\"; };
    ladder = ( { name = \"360p\"; height = 360; bitrate = 600; },
               { name = \"240p\"; height = 240; bitrate = 300; } );
    workflow = { rendition = ( \"target_size\", \"transcode\",
        { stage = \"t_flaky\"; args = { flaky_rung = \"240p\"; }; },
        \"chunk_hls\", \"hls_info\", \"notify\" ); };
  };
  hostfail = {
    segment_duration = 1;
    video = { preset = \"ultrafast\"; };
    ladder = ( { name = \"360p\"; height = 360; bitrate = 600; },
               { name = \"240p\"; height = 240; bitrate = 300; } );
    workflow = { rendition = ( \"target_size\",
        { stage = \"t_flaky\"; args = { flaky_rung = \"360p\"; }; },
        \"transcode\", \"chunk_hls\", \"hls_info\", \"notify\" ); };
  };
};"
# B-frames and 3 reference pictures: the decoder keeps ring slots as
# references while the rungs read others.
mkclip "$T/src.mp4" -f lavfi -i testsrc2=size=640x360:rate=25:duration=3 \
	-f lavfi -i sine=frequency=440:sample_rate=48000:duration=3 \
	-c:v libx264 -preset ultrafast -bf 3 -refs 3 -pix_fmt yuv420p -c:a aac -shortest
# Task ids of this run only: /dev/shm is shared with whatever else runs.
SH=sh$$ AL=al$$ FL=fl$$ HF=hf$$
LADDERD_VERBOSE=1 "$LADDERD" run -c "$T/ladderd.conf" -p shared "$T/src.mp4" -o "$T/out" --task-id "$SH" >"$T/sh.out" 2>"$T/sh.err"
is "$?" 0 "a shared-decode run completes"
like "$(cat "$T/sh.err")" 'shared decoder for 3 rungs' "one decoder for the 3 video rungs"
like "$(unit_pids "$T/sh.err" 'shared decoder')" '^[0-9]+$' "the decoder's lines come from one process"
is "$(unit_pids "$T/sh.err" 'shared decoder')" "$(unit_pids "$T/sh.err" rendition=360p)" \
	"the top rung's worker, which runs it as a thread"
is "$(unit_pids "$T/sh.err" rendition=audio)" "$(unit_pids "$T/sh.err" rendition=360p)" \
	"and the audio rendition's, as another thread"
like "$(cat "$T/sh.err")" 'shared decoder: ok \([0-9.]+ s, cpu [0-9.]+ s\)' \
	"the decoder left its own result (ok, its thread's time)"
is "$(grep -c 'reading frames from the shared decoder' "$T/sh.err")" 3 "every video rung read the ring"
like "$(cat "$T/sh.err")" 'stage=decode: 75 frames, 0 of them copied into the ring \(decoded into its slots\)' \
	"the decoder decoded every frame straight into the ring's slots (no copy)"
# The CPU goes to the rungs in proportion to their work: the top rung keeps
# its priority, a lighter one yields by log(pixel ratio) / log(1.25) nice
# steps (240p: 2.25x fewer pixels than 360p, +4; 180p: 4x, +6), once it
# works (its first progress, after it attached to the ring), not at start.
ok "the top rung keeps its priority" sh -c "! grep -q 'unit 360p: niceness' '$T/sh.err'"
like "$(cat "$T/sh.err")" 'unit 240p: niceness \+4 once working,' "the 240p rung yields 4 nice steps"
like "$(cat "$T/sh.err")" 'unit 180p: niceness \+6 once working,' "the 180p rung yields 6 nice steps"
like "$(cat "$T/sh.err")" 'rendition=240p: working: niceness \+4 from now on' \
	"the 240p rung lowered its priority once working"
ok "after it attached to the ring" sh -c "grep -n 'rendition=240p: .*\(reading frames from the shared decoder\|working: niceness\)' '$T/sh.err' |
	head -n 1 | grep -q 'reading frames'"
"$LADDERD" run -c "$T/ladderd.conf" -p alone "$T/src.mp4" -o "$T/out" --task-id "$AL" >/dev/null 2>"$T/al.err"
is "$?" 0 "the same ladder with shared_decode = false completes"
ok "and decodes per rung" sh -c "! grep -q 'shared decode' '$T/al.err'"
for r in 360p 240p 180p; do
	a=$(ffprobe -v error -count_frames -select_streams v -show_entries stream=nb_read_frames,width,height \
		-of csv=p=0 "$T/out/$SH/$r/index.m3u8" | grep . | head -n 1)
	b=$(ffprobe -v error -count_frames -select_streams v -show_entries stream=nb_read_frames,width,height \
		-of csv=p=0 "$T/out/$AL/$r/index.m3u8" | grep . | head -n 1)
	is "$a" "$b" "rung $r: same size and frame count either way ($a)"
	ka=$(ffprobe -v error -select_streams v -skip_frame nokey -show_entries frame=pts_time -of csv=p=0 \
		"$T/out/$SH/$r/index.m3u8" | tr '\n' ' ')
	kb=$(ffprobe -v error -select_streams v -skip_frame nokey -show_entries frame=pts_time -of csv=p=0 \
		"$T/out/$AL/$r/index.m3u8" | tr '\n' ' ')
	is "$ka" "$kb" "rung $r: same keyframes either way"
	psnr=$(ffmpeg -nostdin -v info -i "$T/out/$SH/$r/index.m3u8" -i "$T/out/$AL/$r/index.m3u8" \
		-lavfi psnr -f null - 2>&1 | sed -n 's/.*average:\([0-9.inf]*\).*/\1/p' | tail -n 1)
	ok "rung $r: shared and per-rung decoding give the same picture (PSNR $psnr dB)" \
		awk -v p="$psnr" 'BEGIN { exit !(p == "inf" || p + 0 >= 40) }'
done
LADDERD_VERBOSE=1 "$LADDERD" run -c "$T/ladderd.conf" -p flaky "$T/src.mp4" -o "$T/out" --task-id "$FL" >/dev/null 2>"$T/fl.err"
is "$?" 0 "a rung failing after reading the ring is retried and the task completes"
like "$(cat "$T/fl.err")" 'rung 240p: t_flaky: flaky failure' "the first attempt failed"
is "$(grep -c 'rendition=240p: stage=transcode: reading frames from the shared decoder' "$T/fl.err")" 1 \
	"only the first attempt read the ring; the retry decoded on its own"
ok "a stage's line names its rendition once" sh -c "! grep -q 'rendition=.*rendition=' '$T/fl.err'"
is "$(ffprobe -v error -count_frames -select_streams v -show_entries stream=nb_read_frames -of csv=p=0 "$T/out/$FL/240p/index.m3u8" | grep . | head -n 1)" \
	75 "the retried rung has every frame"
LADDERD_VERBOSE=1 "$LADDERD" run -c "$T/ladderd.conf" -p hostfail "$T/src.mp4" -o "$T/out" --task-id "$HF" >/dev/null 2>"$T/hf.err"
is "$?" 0 "the top rung, host of the decoder, failing before it read the ring: the task completes"
like "$(cat "$T/hf.err")" 'rung 360p: t_flaky: flaky failure' "(the top rung's first attempt failed)"
is "$(grep -c 'rendition=240p: stage=transcode: reading frames from the shared decoder' "$T/hf.err")" 1 \
	"the other rung read the ring all the same"
like "$(cat "$T/hf.err")" 'shared decoder: ok' "and its decoder finished"
for r in 360p 240p; do
	is "$(ffprobe -v error -count_frames -select_streams v -show_entries stream=nb_read_frames -of csv=p=0 "$T/out/$HF/$r/index.m3u8" | grep . | head -n 1)" \
		75 "rung $r has every frame"
done
ok "no frame ring is left in /dev/shm" sh -c "! ls /dev/shm | grep -Eq '^ladderd-($SH|$AL|$FL|$HF)-'"
done_testing
