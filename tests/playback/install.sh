#!/bin/sh
# tests/playback/install.sh - what the playback test (t0500) and
# contrib/preview need, on Debian 12, as root (or with sudo). Idempotent:
#   * Debian's chromium (and a font) when /usr/bin/chromium is missing: a
#     test tool's own browser download does not work here, so Playwright is
#     pointed at this one (playwright-core never downloads a browser);
#   * `npm ci` in tests/playback when node_modules is missing or was made
#     from another package-lock.json (the players and playwright-core, at
#     the exact versions of the lockfile).
# Exit status: 0 ready; 77 nothing reachable to install from (no network:
# the caller may skip); anything else a real failure.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

say() { echo "install.sh: $*" >&2; }

# One install at a time (two test runs may start together).
if command -v flock >/dev/null 2>&1 && [ "${LADDERD_PLAYBACK_LOCKED:-}" != 1 ]; then
	LADDERD_PLAYBACK_LOCKED=1 exec flock "$here/.install.lock" sh "$here/install.sh" "$@"
fi

# --- chromium ---------------------------------------------------------------
if [ ! -x "$CHROMIUM" ]; then
	say "installing Debian's chromium"
	if ! $SUDO apt-get update -qq >/dev/null 2>&1; then
		say "apt-get update failed (no network?)"
		exit 77
	fi
	if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
		--no-install-recommends chromium fonts-liberation >/dev/null; then
		say "apt-get install chromium failed"
		exit 1
	fi
	[ -x "$CHROMIUM" ] || { say "$CHROMIUM still missing after the install"; exit 1; }
fi

# --- node + npm -------------------------------------------------------------
for tool in node npm; do
	if ! command -v $tool >/dev/null 2>&1; then
		say "$tool is not installed (Node.js 20 with npm is expected on the machine)"
		exit 1
	fi
done

# --- the players and playwright-core ----------------------------------------
# node_modules is current when it was installed from this very lockfile.
sum=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
stamp="$here/node_modules/.ladderd-lock.sha256"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ] ||
	[ ! -d "$here/node_modules/playwright-core" ]; then
	say "npm ci in $here"
	if ! (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2); then
		if ! (cd "$here" && npm ping >/dev/null 2>&1); then
			say "npm ci failed and the npm registry does not answer (no network?)"
			exit 77
		fi
		say "npm ci failed"
		exit 1
	fi
	echo "$sum" >"$stamp"
fi
exit 0
