"""The curated catalogue on the local back-end: a Dask cluster computes on both workers
(orbis.testing.catalogue deploys, checks nothing is left; docs/catalogue.md, docs/testing.md)."""

from __future__ import annotations

import pytest

from orbis.testing.catalogue import CATALOGUE, deployed

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_dask_cluster_computes_on_both_workers(server, engine_url, tmp_path):
    with deployed(
        server, engine_url, tmp_path, "cluster.yaml", "--with", str(CATALOGUE / "dask.yaml")
    ) as infra:
        assert infra.outputs["dask_scheduler"].endswith(":8786")
        script = (
            "from dask.distributed import Client\n"
            "c = Client('tcp://127.0.0.1:8786', timeout=30)\n"
            "c.wait_for_workers(2, timeout=60)\n"
            "futures = c.map(lambda x: x * x, range(100))\n"
            "print('workers', len(c.scheduler_info()['workers']))\n"
            "print('who', len({w for ws in c.who_has(futures).values() for w in ws}))\n"
            "print('sum', c.submit(sum, futures).result())\n"
        )
        out = infra.ssh("front", f"/opt/dask/bin/python - <<'EOF'\n{script}EOF", timeout=120)
        assert "workers 2" in out and "sum 328350" in out, out
