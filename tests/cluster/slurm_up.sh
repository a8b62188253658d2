#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the cluster tests (tests/cluster/).
#
#   source tests/cluster/slurm_up.sh   # or run it; it prints the SLURM_CONF to export
#
# Installs Debian's slurmctld, slurmd, slurm-client and munge where it can (root, apt), writes a
# slurm.conf for this host under $XSWEEP_SLURM_DIR (default /tmp/xsweep-slurm: no cgroups, no
# accounting), starts munged, slurmctld and slurmd by hand (no systemd here) and waits until
# the node is idle. tests/cluster/slurm_down.sh stops exactly the daemons this script started.
# Exit codes: 0 up; 2 cannot start here (not root, no apt, no package): the tests skip;
# 1 it should have started and did not: CI fails.
set -uo pipefail
DIR="${XSWEEP_SLURM_DIR:-/tmp/xsweep-slurm}"
say() { echo "slurm_up: $*" >&2; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
   || ! command -v munged >/dev/null; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "SLURM is not installed and cannot be (needs root and apt): cluster tests skip"; exit 2
  fi
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      slurmctld slurmd slurm-client munge >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null 2>&1) \
      || { say "apt-get could not install slurmctld slurmd slurm-client munge"; exit 2; }
  fi
fi
if [ "$(id -u)" != 0 ]; then
  say "the daemons need root here (munged, slurmd): cluster tests skip"; exit 2
fi

mkdir -p "$DIR"/state "$DIR"/spool
HOST="$(hostname -s)"
CPUS="$(nproc)"
MEM_MB="$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)"

# munge: /run/munge does not exist without systemd; munged runs as the munge user.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    (command -v mungekey >/dev/null && mungekey --create --force >/dev/null 2>&1) \
      || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  fi
  runuser -u munge -- /usr/sbin/munged --force || { say "munged did not start"; exit 1; }
  echo started > "$DIR/munged.ours"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

cat > "$DIR/slurm.conf" <<CONF
ClusterName=xsweep
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
ReturnToService=2
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmdSpoolDir=$DIR/spool
StateSaveLocation=$DIR/state
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SchedulerParameters=sched_interval=1
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$DIR/slurm.conf"

if [ ! -s "$DIR/slurmctld.pid" ] || ! kill -0 "$(cat "$DIR/slurmctld.pid")" 2>/dev/null; then
  slurmctld -f "$SLURM_CONF" -i || { say "slurmctld did not start (see $DIR/slurmctld.log)"; exit 1; }
fi
if [ ! -s "$DIR/slurmd.pid" ] || ! kill -0 "$(cat "$DIR/slurmd.pid")" 2>/dev/null; then
  slurmd -f "$SLURM_CONF" || { say "slurmd did not start (see $DIR/slurmd.log)"; exit 1; }
fi
for _ in $(seq 300); do
  state="$(sinfo -h -o %T 2>/dev/null | head -1)"
  case "$state" in idle*|mixed*|allocated*) echo "SLURM_CONF=$SLURM_CONF"; exit 0 ;; esac
  sleep 0.1
done
say "the node is not idle after 30 s (state: ${state:-none}; logs in $DIR)"
exit 1
