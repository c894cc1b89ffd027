# Shared settings of install.sh / up.sh / down.sh (sourced, not run).
# Everything the test cluster owns lives under $STATE; only the config files sit where
# the Debian packages and every Slurm client look for them (/etc/slurm, /etc/munge).
STATE="${GMGBENCH_SLURM_STATE:-/var/lib/gmgbench-slurm}"
PIDS="$STATE/daemons.pids"      # "name pid exe" per line, written by up.sh, read by down.sh
MARKER="# gmgbench local test cluster (slurm/local/up.sh)"
ETC=/etc/slurm
NODE=localhost                  # never $(hostname): the cluster must not depend on it

say() { echo "[gmgbench-slurm $(basename "$0") $(date +%T)] $*"; }
die() { echo "[gmgbench-slurm $(basename "$0")] error: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "run as root: slurmd must be root to start jobs as their user"; }

# is_ours PID EXE -> true when PID is alive and runs EXE (a recycled PID is not ours)
is_ours() {
  [ -n "${1:-}" ] && [ -e "/proc/$1" ] && [ "$(readlink -f "/proc/$1/exe" 2>/dev/null)" = "$(readlink -f "$2")" ]
}
pidfile_pid() { [ -s "$1" ] && tr -dc 0-9 < "$1"; }

# wait_until SECONDS WHAT CMD... : poll CMD every 0.5 s
wait_until() {
  local limit=$1 what=$2; shift 2
  local end=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "gave up waiting for $what after ${limit}s"
    sleep 0.5
  done
}
