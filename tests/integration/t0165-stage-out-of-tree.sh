#!/bin/sh
# A stage builds out of the tree from stages/ alone (stage.h, plus the
# header-only crash hook) and links no daemon code: publish.so, built here
# with nothing but cc and cJSON, publishes through the host's services
# (mkdirs, chmod_tree, replace_dir), and replaces an earlier package.
. "$(dirname "$0")/lib.sh"
CC=${CC:-cc}
command -v "$CC" >/dev/null || skip_all "no C compiler ($CC)"
pkg-config --exists libcjson || skip_all "pkg-config has no libcjson"

mkdir -p "$T/src" "$T/stages"
cp "$LADDERD_SRC/stages/publish.c" "$LADDERD_SRC/stages/stage.h" \
	"$LADDERD_SRC/stages/crashpoint.h" "$T/src/"
# shellcheck disable=SC2046
ok "publish.c builds with only stages/ headers" \
	"$CC" -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -shared -fPIC -o "$T/stages/publish.so" \
	"$T/src/publish.c" $(pkg-config --cflags --libs libcjson)
# Without it the rest would load the build tree's publish.so instead.
[ -f "$T/stages/publish.so" ] || done_testing
is "$(nm -u "$T/stages/publish.so" | grep -c ladderd_)" 0 \
	"it needs no ladderd symbol"

write_conf "$T/ladderd.conf"
sed -i "s|^stage_dir = .*|stage_dir = \"$T/stages\";|" "$T/ladderd.conf"
printf '{"task":{"id":"oot1","work_dir":"%s","publish_root":"%s"}}' \
	"$T/work" "$T/publish" >"$T/ctx.json"
package() { # CONTENT
	mkdir -p "$T/work/package/360p" &&
	printf '#EXTM3U\n# %s\n' "$1" >"$T/work/package/master.m3u8" &&
	printf 'seg' >"$T/work/package/360p/seg1.m4s" &&
	chmod 0600 "$T/work/package/master.m3u8"
}
package first
stage publish ctx
is "$rc" 0 "the out-of-tree publish.so publishes ($msg)"
like "$(cat "$out")" "\"hls\":[[:space:]]*\"$T/publish/oot1/master.m3u8\"" \
	"ctx.publish names the master playlist"
like "$(cat "$T/publish/oot1/master.m3u8")" "first" "the package is in publish/"
is "$(stat -c %a "$T/publish/oot1/master.m3u8") $(stat -c %a "$T/publish/oot1/360p")" \
	"644 755" "files 0644, folders 0755 (the host's chmod_tree)"
ok "the work folder's package is gone" test ! -e "$T/work/package"
package second
stage publish ctx
is "$rc" 0 "a second run of the same task publishes again"
like "$(cat "$T/publish/oot1/master.m3u8")" "second" \
	"it replaced the earlier package (the host's replace_dir)"
is "$(ls "$T/publish" | tr '\n' ' ')" "oot1 " "nothing staged is left beside it"
done_testing
