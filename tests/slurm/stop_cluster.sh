#!/usr/bin/env bash
# Stops the cluster that tests/slurm/start_cluster.sh DIR started: cancels its jobs, waits for
# them to end, then stops slurmd, slurmctld and munged by the pids it recorded (TERM, then KILL
# after 10 s). Safe to run twice, and on a half-started cluster.
set -uo pipefail

DIR=${1:?usage: stop_cluster.sh DIR}
export PATH="$PATH:/usr/sbin" SLURM_CONF=$DIR/slurm.conf

alive() { [ -f "$DIR/$1.pid.own" ] && kill -0 "$(cat "$DIR/$1.pid.own")" 2>/dev/null; }

if alive slurmctld && alive slurmd; then
    timeout 10 scancel --full --quiet --state=PENDING,RUNNING,SUSPENDED 2>/dev/null || true
    for _ in $(seq 60); do  # jobs end within KillWait (5 s) of their cancellation
        [ -z "$(timeout 5 squeue -h -t PENDING,RUNNING,SUSPENDED,COMPLETING -o %i 2>/dev/null)" ] && break
        sleep 0.5
    done
fi
for name in slurmd slurmctld munged; do
    alive "$name" || continue
    pid=$(cat "$DIR/$name.pid.own")
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    rm -f "$DIR/$name.pid.own"
done
exit 0
