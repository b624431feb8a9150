"""The curated catalogue on the local back-end: a Slurm cluster runs jobs on both workers; a
shared folder is seen from every node
(orbis.testing.catalogue deploys, checks nothing is left; docs/catalogue.md, docs/testing.md)."""

from __future__ import annotations

import time

import pytest

from orbis.testing.catalogue import CATALOGUE, deployed, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_slurm_cluster_runs_a_job_on_both_workers(server, engine_url, tmp_path):
    with deployed(
        server, engine_url, tmp_path, "cluster.yaml", "--with", str(CATALOGUE / "slurm.yaml")
    ) as infra:
        assert len(infra.nodes["wn"]) == 2
        # both slurmd registered and idle (they may take a moment after their restart)
        idle = wait_for(
            lambda: infra.ssh("front", "sinfo -h -N -o '%N %t'").split().count("idle") == 2,
            timeout=60,
        )
        assert idle, infra.ssh("front", "sinfo -N; scontrol show nodes")
        out = infra.ssh("front", "srun -N2 -t 1 hostname | sort", timeout=90)
        assert out.split() == ["wn-1", "wn-2"], out
        # a batch job: its script runs on the first node of the allocation, which keeps the
        # output file (no shared folder in this composition)
        submitted = infra.ssh(
            "front", "sbatch --wait -N2 -o /tmp/job.out --wrap 'srun hostname'", timeout=120
        )
        assert "Submitted batch job" in submitted, submitted
        batch = infra.ssh("wn", "sort /tmp/job.out", index=0)
        assert batch.split() == ["wn-1", "wn-2"], batch


def test_shared_folder_a_file_written_on_one_node_is_read_on_the_others(
    server, engine_url, tmp_path
):
    with deployed(
        server, engine_url, tmp_path, "cluster.yaml", "--with", str(CATALOGUE / "nfs.yaml")
    ) as infra:
        stamp = f"written on wn-1 at {time.time()}"
        infra.ssh("wn", f"echo '{stamp}' > /mnt/share/from-wn1.txt", index=0)
        # the kernel backend shows it at once; the sync backend within a few seconds
        seen = wait_for(
            lambda: stamp in infra.ssh("wn", "cat /mnt/share/from-wn1.txt", index=1), timeout=30
        )
        assert seen, infra.ssh("wn", "ls -la /mnt/share; systemctl status orbis-share", index=1)
        assert wait_for(lambda: stamp in infra.ssh("front", "cat /srv/share/from-wn1.txt"), 30)
        # and the other way: the front-end writes, a working node reads
        infra.ssh("front", "echo from-front > /srv/share/from-front.txt")
        assert wait_for(
            lambda: "from-front" in infra.ssh("wn", "cat /mnt/share/from-front.txt", index=0), 30
        )
