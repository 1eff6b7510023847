#!/bin/sh
# tests/tools/slurm-cluster.sh start|stop DIR - a single-node Slurm cluster
# (munged, slurmctld, slurmd) living entirely under DIR, on 127.0.0.1, for
# the suite. No systemd, no cgroups, no accounting. After `start`, use it
# with SLURM_CONF=DIR/slurm.conf (start prints that line). Every wait is
# bounded; `stop` kills what `start` started (by the pid files in DIR).
set -eu
cmd=${1:?start|stop}
d=${2:?folder}
mkdir -p "$d"
d=$(cd "$d" && pwd)

stop() {
	for p in slurmd slurmctld munged; do
		[ -s "$d/$p.pid" ] || continue
		pid=$(cat "$d/$p.pid")
		kill -TERM "$pid" 2>/dev/null || true
		i=0
		# A zombie of an exited daemon can look alive for a while here:
		# check the process state, not kill -0.
		while [ $i -lt 50 ] && [ -d "/proc/$pid" ] &&
			! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do
			sleep 0.1
			i=$((i + 1))
		done
		[ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null || true
		rm -f "$d/$p.pid"
	done
}

if [ "$cmd" = stop ]; then
	stop
	exit 0
fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
for b in munged mungekey slurmctld slurmd srun sinfo; do
	command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || {
		echo "slurm-cluster: $b not found" >&2
		exit 3
	}
done
PATH=$PATH:/usr/sbin
stop
rm -rf "$d/state" "$d/spool" "$d/munge"
mkdir -p "$d/state" "$d/spool" "$d/munge"
# munged refuses a socket folder others cannot enter, and a key others read.
chmod 0711 "$d/munge"
mungekey -c -k "$d/munge/munge.key" >/dev/null 2>&1
chmod 0600 "$d/munge/munge.key"
munged --key-file="$d/munge/munge.key" --socket="$d/munge/munge.socket" \
	--pid-file="$d/munged.pid" --log-file="$d/munged.log" \
	--seed-file="$d/munge/munge.seed" --force
cpus=$(nproc 2>/dev/null || echo 2)
mem=$(awk '/^MemTotal/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
port=${SLURM_TEST_PORT:-$((6817 + $$ % 500 * 2))}
cat >"$d/slurm.conf" <<CONF
ClusterName=ladderdtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/slurmctld.log
SlurmdLogFile=$d/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
DependencyParameters=kill_invalid_depend
ReturnToService=2
MpiDefault=none
KillWait=2
InactiveLimit=0
MinJobAge=300
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
export SLURM_CONF="$d/slurm.conf"
slurmctld -i -f "$SLURM_CONF"
slurmd -N localhost -f "$SLURM_CONF"
i=0
until [ "$(sinfo -h -n localhost -o %t 2>/dev/null)" = idle ]; do
	i=$((i + 1))
	if [ $i -gt 150 ]; then
		echo "slurm-cluster: the node did not come up in 15 s" >&2
		tail -n 20 "$d/slurmctld.log" "$d/slurmd.log" >&2 || true
		stop
		exit 1
	fi
	sleep 0.1
done
echo "SLURM_CONF=$SLURM_CONF"
