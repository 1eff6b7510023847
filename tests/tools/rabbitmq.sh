#!/bin/sh
# tests/tools/rabbitmq.sh start|stop|ctl DIR [ARGS] - a RabbitMQ broker of
# the test's own, without systemd: everything (node data, logs, cookie,
# epmd) under DIR, listening on 127.0.0.1 only, on free ports (AMQP,
# Erlang distribution, epmd). `start` waits for it (await_startup) and
# writes DIR/amqp_port; `stop` shuts the node down and ends its epmd.
# Exit 77 from `start`: no rabbitmq-server here (the caller skips).
set -eu
cmd=$1 D=$2
shift 2
SBIN=/usr/lib/rabbitmq/bin
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
env_of() { # the environment every rabbitmq command of this node needs
	export HOME="$D/home" RABBITMQ_NODENAME=rabbit@localhost \
		RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
		RABBITMQ_NODE_PORT="$(cat "$D/amqp_port")" \
		RABBITMQ_DIST_PORT="$(cat "$D/dist_port")" \
		ERL_EPMD_PORT="$(cat "$D/epmd_port")" \
		ERL_EPMD_ADDRESS=127.0.0.1 \
		RABBITMQ_MNESIA_BASE="$D/mnesia" RABBITMQ_LOG_BASE="$D/log" \
		RABBITMQ_PID_FILE="$D/rabbit.pid" \
		RABBITMQ_ENABLED_PLUGINS_FILE="$D/enabled_plugins" \
		RABBITMQ_CONFIG_FILE="$D/rabbitmq.conf" \
		RABBITMQ_ADVANCED_CONFIG_FILE="$D/advanced.config" \
		RABBITMQ_CONF_ENV_FILE="$D/rabbitmq-env.conf"
}
case $cmd in
start)
	[ -x "$SBIN/rabbitmq-server" ] || exit 77
	mkdir -p "$D/home" "$D/mnesia" "$D/log"
	[ -s "$D/amqp_port" ] || free_port >"$D/amqp_port"
	[ -s "$D/dist_port" ] || free_port >"$D/dist_port"
	[ -s "$D/epmd_port" ] || free_port >"$D/epmd_port"
	echo '[].' >"$D/enabled_plugins"
	: >"$D/rabbitmq-env.conf"
	echo '[].' >"$D/advanced.config"
	cat >"$D/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$(cat "$D/amqp_port")
log.console = false
log.file.level = info
CONF
	env_of
	"$SBIN/rabbitmq-server" >>"$D/server.out" 2>&1 &
	echo $! >"$D/server.shpid"
	# await_startup waits for the node; bounded by its timeout.
	"$SBIN/rabbitmqctl" -q --timeout 60 wait "$D/rabbit.pid" \
		>>"$D/ctl.out" 2>&1
	;;
stop)
	[ -s "$D/amqp_port" ] || exit 0
	env_of
	"$SBIN/rabbitmqctl" -q --timeout 30 shutdown >>"$D/ctl.out" 2>&1 || true
	# Bounded wait for the shell that ran the server.
	p=$(cat "$D/server.shpid" 2>/dev/null || echo)
	i=0
	while [ -n "$p" ] && kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -n "$p" ] && kill "$p" 2>/dev/null || true
	;;
stop-epmd)
	[ -s "$D/epmd_port" ] || exit 0
	env_of
	epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1 || true
	;;
ctl)
	env_of
	exec "$SBIN/rabbitmqctl" -q "$@"
	;;
*)
	echo "usage: rabbitmq.sh start|stop|stop-epmd|ctl DIR [ARGS]" >&2
	exit 2
	;;
esac
