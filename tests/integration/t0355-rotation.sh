#!/bin/sh
# t0355-rotation.sh - a source with a quarter-turn or half-turn display
# matrix comes out upright in the pixels (libavfilter transpose /
# hflip,vflip in the task's filter chain, graph.c), with and without the
# shared decoder:
#  * width and height swap for 90 and 270 degrees, not for 180;
#  * the output has no display matrix, so no player turns it twice;
#  * a red box in the source's top-left corner and a blue one in its
#    top-right end up in the corners the display matrix names (measured on
#    the first frame as rgb24), the same corners ffmpeg's own autorotation
#    gives;
#  * the shared decoder turns the picture once for every rung (one
#    "filters: transpose" line in the task), a rung decoding for itself
#    turns its own (one per rung).
# ffmpeg 5.1 has no -display_rotation: the matrix comes from
# -metadata:s:v rotate=N, which it writes as N degrees counterclockwise (as
# ffprobe's "rotation" reads it back); the expectations are derived from
# ffprobe's value, not from N.
. "$(dirname "$0")/lib.sh"

command -v ffmpeg >/dev/null || skip_all "ffmpeg not installed"
command -v ffprobe >/dev/null || skip_all "ffprobe not installed"
[ -x "$LADDERD" ] || skip_all "ladderd not built"

write_conf "$T/ladderd.conf" "$(shared_alone_profiles)"
mkclip "$T/src.mp4" -f lavfi -i "color=c=black:s=640x360:r=25:d=1,\
drawbox=x=0:y=0:w=160:h=90:color=red:t=fill,\
drawbox=x=480:y=0:w=160:h=90:color=blue:t=fill" \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p ||
	{ echo "Bail out! cannot make test clips with ffmpeg"; exit 1; }
for n in 90 180 270; do
	mkclip "$T/r$n.mp4" -i "$T/src.mp4" -c copy -metadata:s:v:0 rotate=$n ||
		{ echo "Bail out! cannot make a rotated clip"; exit 1; }
done

# corners FILE W H: the colour at each corner (10 % inside) of the first
# frame, "TL=red TR=... BR=... BL=...".
corners() {
	ffmpeg -nostdin -v error -i "$1" -frames:v 1 -f rawvideo -pix_fmt rgb24 \
		-y "$T/frame.rgb" || return
	"$PY" - "$T/frame.rgb" "$2" "$3" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
w, h = int(sys.argv[2]), int(sys.argv[3])
if len(d) < w * h * 3:
    sys.exit("short frame: %d bytes for %dx%d" % (len(d), w, h))
def name(x, y):
    r, g, b = d[(y * w + x) * 3:(y * w + x) * 3 + 3]
    if r > 150 and g < 90 and b < 90:
        return "red"
    if b > 150 and r < 90 and g < 90:
        return "blue"
    if r < 60 and g < 60 and b < 60:
        return "black"
    return "%d,%d,%d" % (r, g, b)
x0, x1, y0, y1 = w // 10, w - 1 - w // 10, h // 10, h - 1 - h // 10
print("TL=%s TR=%s BR=%s BL=%s" % (name(x0, y0), name(x1, y0), name(x1, y1),
                                   name(x0, y1)))
PY
}
# expect CW: the corners after turning the source CW degrees clockwise.
expect() {
	case $1 in
	90) echo "TL=black TR=red BR=blue BL=black" ;;
	180) echo "TL=black TR=black BR=red BL=blue" ;;
	270) echo "TL=blue TR=black BR=black BL=red" ;;
	esac
}

is "$(corners "$T/src.mp4" 640 360)" "TL=red TR=blue BR=black BL=black" \
	"the source: red top-left, blue top-right"
for n in 90 180 270; do
	# ffprobe: counterclockwise degrees; ours: clockwise.
	ccw=$(ffprobe -v error -select_streams v -show_entries stream_side_data=rotation \
		-of csv=p=0 "$T/r$n.mp4" | grep . | head -n 1)
	cw=$(( ((0 - ${ccw:-0}) % 360 + 360) % 360 ))
	# A rung's height is the short side: portrait 320x568 and 180x320.
	if [ $((cw % 180)) = 90 ]; then
		W=320 H=568 w=180 h=320 RW=360 RH=640
	else
		W=568 H=320 w=320 h=180 RW=640 RH=360
	fi
	# ffmpeg's autorotation of the source: the reference picture.
	ffmpeg -nostdin -v error -i "$T/r$n.mp4" -frames:v 1 -c:v libx264 \
		-preset ultrafast -y "$T/ref$n.mp4"
	is "$(corners "$T/ref$n.mp4" $RW $RH)" "$(expect $cw)" \
		"rotate=$n (a ${cw} degree clockwise display matrix): ffmpeg's autorotation agrees"
	for mode in shared alone; do
		id=$mode$n-$$
		LADDERD_VERBOSE=1 "$LADDERD" run -c "$T/ladderd.conf" -p $mode "$T/r$n.mp4" \
			-o "$T/out" --task-id "$id" >"$T/$id.out" 2>"$T/$id.err"
		is "$?" 0 "$mode, $cw degrees: the package completes"
		for r in hi:$W:$H lo:$w:$h; do
			name=${r%%:*}; rest=${r#*:}
			f="$T/out/$id/$name/index.m3u8"
			is "$(ffprobe -v error -select_streams v -show_entries stream=width,height \
				-of csv=s=x:p=0 "$f" | grep . | head -n 1)" "$(echo "$rest" | tr : x)" \
				"$mode, $cw degrees, rung $name: ${rest%%:*} wide, ${rest#*:} high"
			is "$(ffprobe -v error -select_streams v -show_entries stream_side_data=rotation \
				-of csv=p=0 "$T/out/$id/$name/init.mp4" | grep .)" "" \
				"$mode, $cw degrees, rung $name: no display matrix"
			is "$(corners "$f" ${rest%%:*} ${rest#*:})" "$(expect $cw)" \
				"$mode, $cw degrees, rung $name: upright (corners)"
		done
		turns=$(grep -c 'filters: .*\(transpose\|hflip,vflip\)' "$T/$id.err")
		if [ $mode = shared ]; then
			is "$(grep -c 'reading frames from the shared decoder' "$T/$id.err"):$turns" "2:1" \
				"shared, $cw degrees: both rungs read the ring, turned once by the decoder"
		else
			is "$turns" 2 "alone, $cw degrees: each rung turns its own frames"
		fi
	done
done
ok "no frame ring is left in /dev/shm" sh -c "! ls /dev/shm | grep -Eq '^ladderd-(shared|alone)[0-9]+-$$-'"
done_testing
