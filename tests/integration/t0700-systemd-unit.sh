#!/bin/sh
# The systemd unit make generates: the installed paths substituted (no
# @placeholder@ left, no /usr/local unless that is the prefix),
# Type=notify with a watchdog, writable folders covering the defaults of
# ladderd.conf, and a `systemd-analyze security --offline=yes` exposure
# score <= 2.0 (the unit before this test scored 8.7).
. "$(dirname "$0")/lib.sh"

U="$LADDERD_BUILD/contrib/systemd/ladderd.service"
ok "make generated the unit" test -s "$U"
[ -s "$U" ] || done_testing

# The paths make substituted, as make itself expands them.
# (Without the outer make's flags: under `make -j check` they turn on
# "Entering directory" lines.)
mkvar() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	make -s --no-print-directory -C "$LADDERD_BUILD" -f Makefile -f - \
	print-var V="$1" <<'MK'
print-var:
	@echo '$($(V))'
MK
}
bindir=$(mkvar bindir)
sysconfdir=$(mkvar sysconfdir)
ok "make knows bindir and sysconfdir" test -n "$bindir" -a -n "$sysconfdir"
is "$(sed -n 's/^ExecStart=//p' "$U")" "$bindir/ladderd -c $sysconfdir/ladderd.conf" \
	"ExecStart= runs the installed binary on the installed config"
is "$(grep -c '@[a-z_]*@' "$U")" 0 "no placeholder left"
is "$(sed -n 's/^Type=//p' "$U")" notify "Type=notify"
like "$(sed -n 's/^WatchdogSec=//p' "$U")" '^[0-9]+' "WatchdogSec= is set"

# Every default folder (spool, publish, status, failed) is writable.
"$LADDERD" check-config -c /dev/null >"$T/defaults" 2>&1
rw=$(sed -n 's/^ReadWritePaths=//p' "$U" | tr ' ' '\n')
for k in spool publish status failed; do
	dir=$(awk -v k="$k" '$1 == k { print $2; exit }' "$T/defaults")
	covered=no
	for p in $rw; do
		case "$dir/" in "${p%/}/"*) covered=yes ;; esac
	done
	is "$covered" yes "the default $k folder '$dir' is in ReadWritePaths="
done

command -v systemd-analyze >/dev/null 2>&1 || {
	echo "# systemd-analyze not installed (Debian package systemd): score not checked"
	done_testing
}
# systemd-analyze reads the unit by its name: give it one.
cp "$U" "$T/ladderd.service"
systemd-analyze security --offline=yes --no-pager "$T/ladderd.service" \
	>"$T/security" 2>&1
score=$(sed -n 's/.*Overall exposure level for ladderd.service: \([0-9.]*\).*/\1/p' "$T/security")
if [ -z "$score" ]; then
	echo "# systemd-analyze cannot run here: $(tail -n 1 "$T/security")"
	done_testing
fi
echo "# exposure score: $score"
ok "systemd-analyze security: exposure $score <= 2.0" \
	awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'
for d in ProtectSystem=strict ProtectHome=yes PrivateDevices=yes PrivateTmp=yes \
	NoNewPrivileges=yes CapabilityBoundingSet= MemoryDenyWriteExecute=yes \
	'SystemCallFilter=@system-service' SystemCallArchitectures=native \
	'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' User=ladderd UMask=0027; do
	ok "unit sets $d" grep -qx "$d" "$U"
done
done_testing
