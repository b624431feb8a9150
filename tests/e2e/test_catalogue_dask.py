"""The curated catalogue (examples/catalogue/) deploys on the local back-end and its software works:
a Dask cluster.

Each test deploys a base template with add-ons through the CLI (`orbis deploy base --with
addon`), checks the software from inside the nodes over SSH (or over HTTP), destroys the
infrastructure and checks that no container or network with its label remains
(orbis.testing.catalogue). The catalogue's deployments are spread over several files so that
`make test`'s workers run them side by side (docs/testing.md). Timings are in docs/catalogue.md.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orbis.testing.catalogue import CATALOGUE, deployed
from orbis.testing.server import RunningServer, orbis_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(engine_url: str) -> Iterator[RunningServer]:
    with orbis_server(engine_url) as running:
        yield running


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
