"""The curated catalogue (examples/catalogue/) deploys on the local back-end and its software works.

Each test deploys a base template with add-ons through the CLI (`orbis deploy base --with
addon`), checks the software from inside the nodes over SSH (or over HTTP), destroys the
infrastructure and checks that no container or network with its label remains. Timings of a
run are in docs/catalogue.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from orbis.providers.base import LABEL_INFRASTRUCTURE
from orbis.testing.server import RunningServer, orbis_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SPREAD_TESTS = True  # independent deployments: xdist may run them on different workers
REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "examples/catalogue"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def server(engine_url: str) -> Iterator[RunningServer]:
    with orbis_server(engine_url) as running:
        yield running


def leftovers(engine_url: str, infra_id: str) -> list[str]:
    client = docker.DockerClient(base_url=engine_url)
    label = f"{LABEL_INFRASTRUCTURE}={infra_id}"
    names = [c.name for c in client.containers.list(all=True, filters={"label": label})]
    names += [n.name for n in client.networks.list(filters={"label": label})]
    return names


@dataclass
class Deployed:
    """A configured infrastructure: its outputs, and SSH access to each node by name."""

    server: RunningServer
    infra_id: str
    outputs: dict[str, Any]
    key_file: Path
    nodes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # name -> VMs

    def address(self, node: str, index: int = 0) -> str:
        vm = self.nodes[node][index]
        return str(vm["private_ip"] or vm["public_ip"])

    def ssh(self, node: str, command: str, index: int = 0, timeout: float = 120) -> str:
        done = subprocess.run(
            ["ssh", "-i", str(self.key_file), "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
             f"root@{self.address(node, index)}", command],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        return done.stdout + done.stderr


@contextmanager
def deployed(
    server: RunningServer, engine_url: str, tmp_path: Path, base: str, *args: str
) -> Iterator[Deployed]:
    """Deploy `base` (in the catalogue) with CLI arguments `args`; destroy it afterwards and
    check that nothing labelled with it remains."""
    started = time.monotonic()
    done = server.cli("deploy", str(CATALOGUE / base), *args)
    found = UUID.search(done.stdout)
    assert found, done.stdout + done.stderr
    infra_id = found.group(0)
    try:
        assert done.returncode == 0, done.stdout + done.stderr + server.cli("logs", infra_id).stdout
        print(f"\n{base} {' '.join(args)}: configured in {time.monotonic() - started:.1f} s")
        outputs = json.loads(server.cli("outputs", infra_id, "--json").stdout)
        with server.client() as client:
            detail = client.get(f"/orbis/infrastructures/{infra_id}").json()
            first = detail["nodes"][0]["vm_id"]
            vm = client.get(
                f"/infrastructures/{infra_id}/vms/{first}", headers={"Accept": "application/json"}
            ).json()["radl"][-1]
        key_file = tmp_path / f"key-{infra_id}"
        key_file.write_text(vm["disk.0.os.credentials.private_key"])
        key_file.chmod(0o600)
        result = Deployed(server, infra_id, outputs, key_file)
        for node in sorted(detail["nodes"], key=lambda n: n["vm_id"]):
            result.nodes.setdefault(node["name"], []).append(node)
        yield result
    finally:
        destroyed = server.cli("destroy", infra_id)
        print(f"{base}: deploy + checks + destroy in {time.monotonic() - started:.1f} s")
    assert destroyed.returncode == 0, destroyed.stderr
    assert leftovers(engine_url, infra_id) == []


def wait_for(check: Any, timeout: float = 60, every: float = 1.0) -> Any:
    """Call `check` until it returns something truthy; return that (or the last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


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


def test_jupyterlab_answers_on_its_login_page(server, engine_url, tmp_path):
    with deployed(
        server, engine_url, tmp_path, "vm.yaml", "--with", str(CATALOGUE / "jupyterlab.yaml"),
        "-i", "jupyterlab_token=e2e-token-1234",
    ) as infra:  # fmt: skip
        url = infra.outputs["jupyterlab_url"]
        base = url.rsplit("/", 1)[0]
        login = httpx.get(f"{base}/login", timeout=20)
        assert login.status_code == 200 and "Jupyter" in login.text
        api = httpx.get(f"{base}/api/status", params={"token": "e2e-token-1234"}, timeout=20)
        assert api.status_code == 200, api.text
        assert httpx.get(f"{base}/api/status", timeout=20).status_code == 403  # token needed


def test_hello_web_page_from_the_catalogue(server, engine_url, tmp_path):
    with deployed(
        server, engine_url, tmp_path, "vm.yaml", "--with", str(CATALOGUE / "hello_web.yaml"),
        "-i", "hello_greeting=Hi from the catalogue e2e",
    ) as infra:  # fmt: skip
        page = httpx.get(infra.outputs["hello_url"], timeout=10)
        assert page.status_code == 200
        assert "<h1>Hi from the catalogue e2e</h1>" in page.text
        assert infra.infra_id in page.text
