#!/usr/bin/env bash
# Stop the local test cluster started by up.sh: cancel its jobs, then stop slurmd,
# slurmctld, slurmdbd, mariadbd and munged by the PIDs up.sh saved, each only if that PID
# still runs the expected program. Idempotent.
#   GMGBENCH_SLURM_PURGE=1   also delete the state folder (job ids restart at 1, database gone)
set -uo pipefail
source "$(dirname "$0")/common.sh"
need_root

if [ -f "$PIDS" ] && command -v squeue >/dev/null && scontrol ping 2>/dev/null | grep -q "is UP"; then
  jobs=$(squeue -h -o %A 2>/dev/null | sort -u)
  if [ -n "$jobs" ]; then
    say "cancelling jobs: $(echo $jobs)"
    scancel $jobs 2>/dev/null || true
    for _ in $(seq 60); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.5; done
  fi
fi

stop() { # NAME PID EXE
  local name=$1 pid=$2 exe=$3
  if ! is_ours "$pid" "$exe"; then say "$name: not running"; return 0; fi
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 60); do [ -e "/proc/$pid" ] || { say "$name: stopped (pid $pid)"; return 0; }; sleep 0.5; done
  say "$name: still alive after 30 s, SIGKILL $pid"; kill -KILL "$pid" 2>/dev/null || true
}
if [ -f "$PIDS" ]; then
  # compute node first, the database second to last, munge (everyone's auth) last
  while read -r name pid exe; do stop "$name" "$pid" "$exe"; done < "$PIDS"
  rm -f "$PIDS"
else
  say "no $PIDS: nothing started by up.sh is running"
fi
if [ "${GMGBENCH_SLURM_PURGE:-0}" = 1 ]; then
  say "purging $STATE"
  rm -rf "$STATE"
fi
exit 0
