#!/usr/bin/env bash
# Stop the daemons tests/cluster/slurm_up.sh started, and only those.
set -uo pipefail
DIR="${XSWEEP_SLURM_DIR:-/tmp/xsweep-slurm}"
stop() {  # killed daemons linger as zombies here: wait for their pid files, not kill -0
  local pidfile="$1"
  [ -s "$pidfile" ] || return 0
  kill "$(cat "$pidfile")" 2>/dev/null || { rm -f "$pidfile"; return 0; }
  for _ in $(seq 100); do [ -e "$pidfile" ] || return 0; sleep 0.1; done
  rm -f "$pidfile"
}
stop "$DIR/slurmd.pid"
stop "$DIR/slurmctld.pid"
if [ -e "$DIR/munged.ours" ]; then
  stop /run/munge/munged.pid
  rm -f "$DIR/munged.ours"
fi
exit 0
