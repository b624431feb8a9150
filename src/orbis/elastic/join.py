"""The quick join: a worker powered on joins Slurm as soon as it answers SSH, by one command
the monitor runs on it, instead of waiting for its Ansible run (an ansible-playbook start, the
Galaxy and type-default steps before it: 10-40 s on a busy 2-core machine, most of the
sbatch → running time).

The command does what the `orbis_slurm` role's `elastic_wn` tasks do, byte for byte (same
munge key, slurm.conf and /etc/default/slurmd), so the role, when it runs later, changes
nothing and restarts nothing. Only for pools whose worker recipe is Orbis's own and that have
no recipe of the user's (`WorkerPool.quick_join`): a worker whose user recipes install what
jobs need must not take jobs before they ran (docs/elastic.md).

Secrets (the munge key) travel on stdin, never on a command line."""

from __future__ import annotations

import base64
import shlex

from orbis.model.elastic import ElasticCluster, WorkerPool

SLURM_PORT = 6817
# on the front-end: its munge key and slurm.conf, base64, one line each
READ_FRONT = "base64 -w0 /etc/munge/munge.key; echo; base64 -w0 /etc/slurm/slurm.conf; echo"

# on the worker: reads the two lines of READ_FRONT on stdin. The controller's address in
# slurm.conf is its private one; a worker of another site that cannot reach it (no overlay)
# uses the front-end's public one (the role does the same).
_SCRIPT = """set -e
read -r key
read -r conf
umask 022
printf %s "$key" | base64 -d > /etc/munge/munge.key.orbis
chown munge:munge /etc/munge/munge.key.orbis
chmod 0400 /etc/munge/munge.key.orbis
mv /etc/munge/munge.key.orbis /etc/munge/munge.key
printf %s "$conf" | base64 -d > /etc/slurm/slurm.conf.orbis
ctl=$(sed -n 's/^SlurmctldHost=[^(]*(\\([^)]*\\)).*/\\1/p' /etc/slurm/slurm.conf.orbis)
if [ -n "$PUBLIC" ] && [ -n "$ctl" ] && \\
   ! timeout 2 bash -c "</dev/tcp/$ctl/{port}" 2>/dev/null; then
  sed -i "s/^\\(SlurmctldHost=[^(]*\\)(.*/\\1($PUBLIC)/" /etc/slurm/slurm.conf.orbis
fi
chmod 0644 /etc/slurm/slurm.conf.orbis
mv /etc/slurm/slurm.conf.orbis /etc/slurm/slurm.conf
printf '%s\\n' "$OPTIONS" > /etc/default/slurmd
systemctl restart munge
systemctl restart slurmd
systemctl enable munge slurmd >/dev/null 2>&1 || true
"""


def slurmd_options(cluster: ElasticCluster, pool: WorkerPool, name: str) -> str:
    """The /etc/default/slurmd line, as the role writes it."""
    features = ",".join(["elastic", *(f"q_{q}" for q in cluster.queues(pool))])
    return (f'SLURMD_OPTIONS="-Z -N {name} --conf \\"CPUs={pool.cpus} '
            f'RealMemory={pool.memory_mb} Feature={features}\\""')  # fmt: skip


def worker_command(cluster: ElasticCluster, pool: WorkerPool, name: str, front_public: str,
                   *, sudo: bool) -> str:  # fmt: skip
    """The command run on the worker (stdin: READ_FRONT's output)."""
    env = (f"PUBLIC={shlex.quote(front_public)} "
           f"OPTIONS={shlex.quote(slurmd_options(cluster, pool, name))}")  # fmt: skip
    run = f"{env} bash -c {shlex.quote(_SCRIPT.replace('{port}', str(SLURM_PORT)))}"
    return f"sudo -n env {run}" if sudo else f"env {run}"


def front_files(output: str) -> str:
    """READ_FRONT's output checked: two base64 lines (raises ValueError otherwise)."""
    lines = output.strip().splitlines()
    if len(lines) != 2 or not lines[0] or not lines[1]:
        raise ValueError("the front-end's munge key or slurm.conf could not be read")
    for line in lines:
        base64.b64decode(line, validate=True)
    return "\n".join(lines) + "\n"
