#!/usr/bin/env bash
# Install what the local test cluster needs (Debian/Ubuntu, as root): Slurm's controller,
# node daemon and clients, munge, slurmdbd and MariaDB (so that `sacct` works; submitit
# polls it for job states). Idempotent: installs only missing packages, and runs
# `apt-get update` only then.
set -euo pipefail
source "$(dirname "$0")/common.sh"
need_root
command -v apt-get >/dev/null || die "apt-get not found: install slurm-wlm, munge, slurmdbd and mariadb-server by hand"

PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  say "all packages present"
  exit 0
fi
say "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || die "apt-get update failed (offline?)"
# --no-install-recommends keeps the install small; the postinst scripts may try to
# start daemons under systemd, which up.sh then finds (or not) and handles by PID.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
say "installed"
