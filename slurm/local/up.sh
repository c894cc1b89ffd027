#!/usr/bin/env bash
# Start a single-node Slurm on localhost for the tests (as root, no systemd, no cgroups):
# munged, MariaDB (socket only) + slurmdbd for accounting, slurmctld and slurmd.
# Idempotent: starts only what is not running, restarts a daemon only when its config
# changed, then waits until the node accepts jobs. Stop with down.sh.
#
# Environment:
#   GMGBENCH_SLURM_STATE  state folder (default /var/lib/gmgbench-slurm): spool, logs, PIDs, database
#   SLURM_CPUS            CPUs the node advertises (default 4; may exceed the real cores,
#                         jobs only oversubscribe them)
#   SLURM_MEM_MB          RealMemory of the node (default 8192)
#   SLURM_MAX_ARRAY_SIZE  MaxArraySize (default 1001, Slurm's own default)
#   SLURM_WAIT_S          how long to wait for the node (default 90)
set -euo pipefail
source "$(dirname "$0")/common.sh"
need_root
for exe in /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/slurmdbd /usr/sbin/mariadbd; do
  [ -x "$exe" ] || die "$exe missing: run slurm/local/install.sh first"
done

CPUS="${SLURM_CPUS:-4}"
MEM="${SLURM_MEM_MB:-8192}"
MAX_ARRAY="${SLURM_MAX_ARRAY_SIZE:-1001}"
WAIT_S="${SLURM_WAIT_S:-90}"
RUN="$STATE/run"; LOG="$STATE/log"; SPOOL="$STATE/spool"; DB="$STATE/mysql"

mkdir -p "$RUN" "$LOG" "$SPOOL/ctld" "$SPOOL/d" "$ETC"
chmod 0755 "$STATE" "$RUN" "$LOG" "$SPOOL" "$SPOOL/ctld" "$SPOOL/d"

# munge calls gethostbyname(hostname); make it resolve even on odd CI hosts.
getent hosts "$(hostname)" >/dev/null 2>&1 || echo "127.0.0.1 $(hostname)" >> /etc/hosts

# write_if_changed FILE MODE CONTENT -> exit status 0 when the file was (re)written
write_if_changed() {
  if [ -f "$1" ] && [ "$(cat "$1")" = "$3" ]; then return 1; fi
  if [ -f "$1" ] && ! grep -qF "$MARKER" "$1"; then
    die "$1 exists and was not written by this script; move it away to use the test cluster"
  fi
  ( umask 077; printf '%s\n' "$3" > "$1.tmp" ); chmod "$2" "$1.tmp"; mv "$1.tmp" "$1"
}

# stop_daemon NAME PIDFILE EXE: SIGTERM (then SIGKILL after 30 s) a daemon of ours
stop_daemon() {
  local pid; pid=$(pidfile_pid "$2" || true)
  is_ours "$pid" "$3" || return 0
  say "restarting $1 (config changed): stopping pid $pid"
  kill -TERM "$pid"
  for _ in $(seq 60); do [ -e "/proc/$pid" ] || return 0; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
}
running() { is_ours "$(pidfile_pid "$1" || true)" "$2"; }

# ------------------------------------------------------------------ slurm.conf (clients such as sacctmgr need it too)
# Why each non-default line is here (see docs/slurm.md):
#  AuthInfo cred_expire=10       requeued jobs may start again after 11 s, not 121 s
#  SchedulerParameters           schedule every 5 s so tests do not wait for the 60 s loop
#  CR_CPU_Memory + DefMemPerCPU  several jobs share the node (else each job takes all memory)
#  config_overrides              advertise SLURM_CPUS even if the machine has fewer cores
#  linuxproc / task none / jobacct none   no cgroups in containers
#  KillWait=5                    submitit ignores SIGTERM; do not hold a CPU 30 s per cancel
SLURM_CONF="$MARKER
ClusterName=gmgbench
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=10
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5,batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1024
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MinJobAge=300
MaxArraySize=$MAX_ARRAY
MailProg=/bin/true
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP"
CONF_CHANGED=0
if write_if_changed "$ETC/slurm.conf" 0644 "$SLURM_CONF"; then
  CONF_CHANGED=1
  say "wrote $ETC/slurm.conf (CPUs=$CPUS RealMemory=$MEM MaxArraySize=$MAX_ARRAY)"
fi

# ------------------------------------------------------------------ munge
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge /var/log/munge; chmod 0600 /etc/munge/munge.key; chmod 0755 /run/munge
if running /run/munge/munged.pid /usr/sbin/munged; then
  say "munged running"
else
  say "starting munged"
  runuser -u munge -- /usr/sbin/munged    # must not run as root; daemonises
fi
wait_until 20 munged bash -c 'munge -n | unmunge'

# ------------------------------------------------------------------ MariaDB + slurmdbd
# Our own data folder; the socket stays at the default path so slurmdbd (StorageHost=
# localhost) finds it without client configuration. No TCP at all.
# mariadbd drops to the mysql user before writing its PID and log: give it its own folders
mkdir -p /run/mysqld "$DB" "$RUN/mysql" "$LOG/mysql"; chown mysql:mysql /run/mysqld "$DB" "$RUN/mysql" "$LOG/mysql"
if [ ! -d "$DB/mysql" ]; then
  say "initialising MariaDB in $DB"
  mariadb-install-db --user=mysql --datadir="$DB" --auth-root-authentication-method=socket >"$LOG/mariadb-install.log" 2>&1 \
    || die "mariadb-install-db failed, see $LOG/mariadb-install.log"
fi
if running "$RUN/mysql/mariadbd.pid" /usr/sbin/mariadbd; then
  say "mariadbd running"
else
  [ -S /run/mysqld/mysqld.sock ] && mariadb-admin --protocol=socket ping >/dev/null 2>&1 \
    && die "another MariaDB serves /run/mysqld/mysqld.sock; stop it first"
  say "starting mariadbd"
  setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$DB" --skip-networking \
    --socket=/run/mysqld/mysqld.sock --pid-file="$RUN/mysql/mariadbd.pid" --log-error="$LOG/mysql/mariadb.log" \
    --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
fi
wait_until 60 mariadbd mariadb-admin --protocol=socket ping

DBPASS=$(sed -n 's/^StoragePass=//p' "$ETC/slurmdbd.conf" 2>/dev/null || true)
[ -n "$DBPASS" ] || DBPASS=$(head -c 24 /dev/urandom | base64 | tr -dc A-Za-z0-9)
mariadb --protocol=socket -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
  ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

DBD_CONF="$MARKER
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
DebugLevel=info
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DBPASS
StorageLoc=slurm_acct_db"
# slurmdbd refuses a config readable by others or not owned by SlurmUser
if write_if_changed "$ETC/slurmdbd.conf" 0600 "$DBD_CONF"; then stop_daemon slurmdbd "$RUN/slurmdbd.pid" /usr/sbin/slurmdbd; fi
chown root:root "$ETC/slurmdbd.conf"
if running "$RUN/slurmdbd.pid" /usr/sbin/slurmdbd; then say "slurmdbd running"; else say "starting slurmdbd"; /usr/sbin/slurmdbd; fi
wait_until 60 slurmdbd sacctmgr -n list cluster

# ------------------------------------------------------------------ slurmctld + slurmd
if [ $CONF_CHANGED = 1 ]; then
  stop_daemon slurmd "$RUN/slurmd.pid" /usr/sbin/slurmd
  stop_daemon slurmctld "$RUN/slurmctld.pid" /usr/sbin/slurmctld
fi
if running "$RUN/slurmctld.pid" /usr/sbin/slurmctld; then say "slurmctld running"; else say "starting slurmctld"; /usr/sbin/slurmctld; fi
wait_until 60 slurmctld bash -c 'scontrol ping | grep -q "is UP"'
if running "$RUN/slurmd.pid" /usr/sbin/slurmd; then say "slurmd running"; else say "starting slurmd"; /usr/sbin/slurmd -N "$NODE"; fi

# ------------------------------------------------------------------ PIDs for down.sh
wait_until 20 "pid files" bash -c "test -s '$RUN/slurmd.pid' && test -s '$RUN/slurmctld.pid' && test -s '$RUN/slurmdbd.pid' && test -s '$RUN/mysql/mariadbd.pid'"
{
  echo "slurmd $(pidfile_pid "$RUN/slurmd.pid") /usr/sbin/slurmd"
  echo "slurmctld $(pidfile_pid "$RUN/slurmctld.pid") /usr/sbin/slurmctld"
  echo "slurmdbd $(pidfile_pid "$RUN/slurmdbd.pid") /usr/sbin/slurmdbd"
  echo "mariadbd $(pidfile_pid "$RUN/mysql/mariadbd.pid") /usr/sbin/mariadbd"
  echo "munged $(pidfile_pid /run/munge/munged.pid) /usr/sbin/munged"
} > "$PIDS.tmp" && mv "$PIDS.tmp" "$PIDS"

# ------------------------------------------------------------------ wait for the node
end=$(( $(date +%s) + WAIT_S )); resumed=0
while :; do
  state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1 || true)
  case "$state" in
    idle|mixed|allocated|completing) break ;;
    *drain*|down*|*fail*)
      # a node left drained by an earlier run (e.g. a changed size) does not come back alone
      if [ $resumed = 0 ]; then scontrol update nodename="$NODE" state=resume 2>/dev/null || true; resumed=1; fi ;;
  esac
  if [ "$(date +%s)" -ge $end ]; then
    scontrol show node "$NODE" >&2 || true
    die "node $NODE not usable after ${WAIT_S}s (state ${state:-unknown}); logs in $LOG"
  fi
  sleep 0.5
done
say "up: node $NODE is $state; logs in $LOG, PIDs in $PIDS"
