#!/usr/bin/env bash
# A one-node SLURM cluster on localhost, in a folder of its own, for the tests:
#   tests/slurm/start_cluster.sh DIR     # DIR: a new, short path (the munge socket lives there)
#   . DIR/env.sh; sinfo; sbatch ...      # puts DIR/bin, the cluster's client commands, on PATH
#   tests/slurm/stop_cluster.sh DIR      # cancels its jobs, stops the daemons by their pids
# munged, slurmctld and slurmd run as this user from DIR: its own munge key and socket, two free
# localhost ports, no accounting database. The node declares 16 CPUs, 128 GB and 4 GPUs
# (stand-in device files in gres.conf), so a job asking for `--gpus=1 --cpus-per-task=4
# --mem 24000` is scheduled as on a GPU cluster, then runs on this machine's CPU. Finished jobs
# stay visible to `squeue --states=all` for a day (MinJobAge), as the executor plugin's squeue
# status command needs. Exit 3: SLURM is not installed (it installs nothing: tests/slurm/install.sh
# does, as .ci/run runs it before the tests).
set -euo pipefail

DIR=${1:?usage: start_cluster.sh DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
PARTITION=test  # tests/slurm/cluster.py names it too
export PATH="$PATH:/usr/sbin"

"$HERE/install.sh" --check
mkdir -p "$DIR" && chmod 700 "$DIR"
DIR=$(cd "$DIR" && pwd)
mkdir -m 700 -p "$DIR/munge" "$DIR/state" "$DIR/spool"
ME=$(id -un)
read -r CTLD_PORT SLURMD_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')

head -c 1024 /dev/urandom > "$DIR/munge/munge.key" && chmod 400 "$DIR/munge/munge.key"
# SLURM wants a character device per GPU: four harmless ones stand in (nothing opens them).
i=0
for device in /dev/null /dev/zero /dev/full /dev/random; do ln -s "$device" "$DIR/gpu$i"; i=$((i + 1)); done
# What each job step saw, one file per step (DIR/steps/<job>.<step>.env): the GPU SLURM gave it.
mkdir -p "$DIR/steps"
cat > "$DIR/task_prolog.sh" <<PROLOG
#!/bin/sh
env | grep -E '^(SLURM_(JOB_ID|STEP_ID|JOB_GPUS|STEP_GPUS|CPUS_PER_TASK|MEM_PER_NODE|JOB_PARTITION)|CUDA_VISIBLE_DEVICES|PYTHONPATH)=' \\
    > "$DIR/steps/\$SLURM_JOB_ID.\${SLURM_STEP_ID:-batch}.env"
PROLOG
chmod 755 "$DIR/task_prolog.sh"
cat > "$DIR/slurm.conf" <<CONF
ClusterName=fpqtest
SlurmctldHost=localhost
SlurmUser=$ME
SlurmdUser=$ME
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
MinJobAge=86400
KillWait=5
TaskProlog=$DIR/task_prolog.sh
ReturnToService=2
SlurmdParameters=config_overrides
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=node1 NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=16 RealMemory=128000 Gres=gpu:4 State=UNKNOWN
PartitionName=$PARTITION Nodes=node1 Default=YES MaxTime=INFINITE State=UP
CONF
cat > "$DIR/gres.conf" <<CONF
AutoDetect=off
NodeName=node1 Name=gpu File=$DIR/gpu[0-3]
CONF
# The client commands, each a wrapper in DIR/bin that names this cluster's slurm.conf, as an
# installed cluster's /etc/slurm/slurm.conf would be found: without SLURM_CONF in the environment
# (the jobstep plugin drops SLURM_* variables before its srun, SLURM_CONF among them).
mkdir -p "$DIR/bin"
for binary in sbatch srun squeue scancel scontrol sinfo sacct sacctmgr sshare; do
    real=$(command -v "$binary") || continue
    printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$DIR/slurm.conf" "$real" > "$DIR/bin/$binary"
    chmod 755 "$DIR/bin/$binary"
done
cat > "$DIR/env.sh" <<ENV
export PATH="$DIR/bin:\$PATH"
ENV
export PATH="$DIR/bin:$PATH"

# Each daemon in the foreground of its own session (setsid): its pid is the one to stop, and
# it outlives this script and ignores the caller's Ctrl-C.
start() {  # name, command...
    local name=$1; shift
    setsid "$@" > "$DIR/$name.out" 2>&1 < /dev/null &
    echo $! > "$DIR/$name.pid.own"
}
fail() {
    echo "start_cluster.sh: $1; logs in $DIR:" >&2
    tail -n 20 "$DIR"/*.log "$DIR"/*.out >&2 2>/dev/null || true
    "$HERE/stop_cluster.sh" "$DIR" >&2 || true
    exit 1
}
start munged munged -F --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
    --pid-file="$DIR/munged.pid" --log-file="$DIR/munged.log" --seed-file="$DIR/munge/munged.seed"
for _ in $(seq 50); do [ -S "$DIR/munge/munge.socket" ] && break; sleep 0.1; done
[ -S "$DIR/munge/munge.socket" ] || fail "munged did not start"
start slurmctld slurmctld -D -c -f "$DIR/slurm.conf"
start slurmd slurmd -D -N node1 -f "$DIR/slurm.conf"
state=
SECONDS=0
while [ "$SECONDS" -lt 60 ]; do
    for name in munged slurmctld slurmd; do
        kill -0 "$(cat "$DIR/$name.pid.own")" 2>/dev/null || fail "$name exited"
    done
    state=$(timeout 5 sinfo -h -N -n node1 -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 0.5
done
[ "$state" = idle ] || fail "node1 is '${state:-unreachable}', not idle, after 60 s"
echo "SLURM test cluster up in $DIR: partition $PARTITION, node1 idle; . $DIR/env.sh to use it"
