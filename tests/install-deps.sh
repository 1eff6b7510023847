#!/bin/sh
# Install what ladderd needs to build, test and demo on Debian 12 (as root).
# Idempotent: apt-get runs only when a package is missing.
set -eu
PKGS="build-essential autoconf automake libtool pkg-config
libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev libavfilter-dev
libconfig-dev libcjson-dev libcurl4-openssl-dev libssl-dev libcmocka-dev
librabbitmq-dev rabbitmq-server python3-pika
ffmpeg python3 curl valgrind tmux
libsystemd-dev systemd
clang libfuzzer-14-dev
slurmctld slurmd slurm-client munge"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
# The playback test's browser and players (Debian chromium, npm packages
# pinned by tests/playback/package-lock.json), before a parallel make check.
if [ "${LADDERD_PLAYBACK:-1}" != 0 ]; then
	PKGS2="nodejs npm"
	command -v npm >/dev/null 2>&1 || {
		SUDO=""
		[ "$(id -u)" = 0 ] || SUDO=sudo
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $PKGS2
	}
	sh "$(dirname "$0")/playback/install.sh"
fi
