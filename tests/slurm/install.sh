#!/usr/bin/env bash
# Installs SLURM (slurm-wlm: slurmctld, slurmd and the client commands) and munge from the Debian or
# Ubuntu archive when a binary is missing; a no-op where they are installed. Needs root or
# passwordless sudo. Exit 3: they are missing and cannot be installed here. With --check it only
# says whether they are installed (exit 3 and the missing binaries if not): what the tests run,
# since nothing under tests/ installs system packages (.ci/run runs this script without --check).
set -euo pipefail

missing=0
for binary in munged slurmctld slurmd sbatch squeue sinfo scancel scontrol; do
    command -v "$binary" >/dev/null || PATH="$PATH:/usr/sbin" command -v "$binary" >/dev/null || missing=1
done
[ "$missing" = 0 ] && exit 0
if [ "${1:-}" = "--check" ]; then
    echo "slurm-wlm and munge are not installed (tests/slurm/install.sh installs them, as root or with sudo)" >&2
    exit 3
fi

if [ "$(id -u)" = 0 ]; then
    as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "slurm-wlm and munge are missing and this user can neither install them (not root) nor sudo" >&2
    exit 3
fi
if ! command -v apt-get >/dev/null; then
    echo "slurm-wlm and munge are missing and there is no apt-get to install them" >&2
    exit 3
fi
# policy-rc.d-less machines start the packaged services on install; the test cluster never uses
# them (its own ports, munge socket and configuration folder).
"${as_root[@]}" apt-get update -qq >&2 || { echo "apt-get update failed" >&2; exit 3; }
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
    slurm-wlm munge >&2 || { echo "apt-get install slurm-wlm munge failed" >&2; exit 3; }
