"""No container Orbis makes reaches a link-local address through the host (docs/security.md §7):
on a cloud VM that is where the metadata service hands out the host's instance credentials.

The host is given two link-local services for the test's duration, on a veth pair of its own
(this kernel has no dummy interfaces): 169.254.169.250 on the host's end (the host holds the
address: the INPUT path) and 169.254.170.2 in a network namespace at the other end (the host
routes to it: the FORWARD path); both are removed afterwards. The host itself fetches both. Then
a node of the local back-end and the infrastructure's recipe runner each try to fetch both, and
the host's own address on their bridge as a control: the control answers, both link-local ones
are refused at once. Without `scripts/linklocal-guard.nft` (installed by `engine.sh start`)
both containers read the planted "credentials" (checked by deleting the table: this fails).
Needs root (ip link, ip netns), as the engine does. About 10 s here."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import docker
import pytest

from orbis.providers.base import NodeSpec
from orbis.providers.local import LocalProvider
from orbis.runner.pool import RunnerPool

pytestmark = [pytest.mark.e2e]

# not the metadata address itself: on a cloud CI machine that would hide the real service from
# the host for the test's duration; the guard covers the whole link-local range
HELD = "169.254.169.250"  # on the host's end of the veth: INPUT
ROUTED_HOST, ROUTED = "169.254.170.1", "169.254.170.2"  # host end, namespace end: FORWARD
SECRET = "planted-instance-credentials"

# Run in a container: GET each URL within 3 s; "200 <body>" or why it failed. "refused" and
# "unreachable" come back at once (a reject); "timeout" would be a silent drop.
PROBE = r"""
import json, socket, sys, urllib.error, urllib.request
seen = {}
for url in sys.argv[1:]:
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            seen[url] = f"{answer.status} {answer.read().decode()}"
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, ConnectionRefusedError):
            seen[url] = "refused"
        elif isinstance(reason, (socket.timeout, TimeoutError)):
            seen[url] = "timeout"
        else:
            seen[url] = f"unreachable {reason}"
    except (socket.timeout, TimeoutError):
        seen[url] = "timeout"
print(json.dumps(seen))
"""
# The container's default gateway: the host's own address on the container's bridge.
GATEWAY = (
    "import socket, struct\n"
    "for line in open('/proc/net/route').readlines()[1:]:\n"
    "    f = line.split()\n"
    "    if f[1] == '00000000':\n"
    "        print(socket.inet_ntoa(struct.pack('<L', int(f[2], 16))))\n"
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = SECRET.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _link_local_services(folder: Path) -> Iterator[tuple[int, int]]:
    """(port of the host's server on every address, port in the namespace, which serves
    `folder`); removed after."""
    if os.geteuid() != 0:
        pytest.fail("needs root (ip link/netns), as scripts/engine.sh does", pytrace=False)
    tag = secrets.token_hex(3)
    veth, peer, ns = f"omh{tag}", f"omn{tag}", f"orbis-md-{tag}"
    server = HTTPServer(("0.0.0.0", 0), _Answer)  # the held address and the bridge gateways
    threading.Thread(target=server.serve_forever, daemon=True).start()
    inner = None
    try:
        _ip("netns", "add", ns)
        _ip("link", "add", veth, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", ns)
        _ip("addr", "add", f"{HELD}/32", "dev", veth)
        _ip("addr", "add", f"{ROUTED_HOST}/30", "dev", veth)
        _ip("link", "set", veth, "up")
        _ip("-n", ns, "addr", "add", f"{ROUTED}/30", "dev", peer)
        _ip("-n", ns, "link", "set", peer, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        port = 18000 + secrets.randbelow(2000)
        inner = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "http.server",
                                  "--bind", ROUTED, str(port), "--directory", str(folder)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        yield server.server_address[1], port
    finally:
        if inner is not None:
            inner.kill()
            inner.wait()
        server.shutdown()
        server.server_close()
        for args in (("link", "del", veth), ("netns", "del", ns)):  # the peer goes with it
            with suppress(subprocess.CalledProcessError):
                _ip(*args)


def _fetch_from_host(url: str) -> str:
    """The host's own fetch, retried while the namespace's server starts."""
    for _ in range(50):
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return str(answer.read().decode())
        except OSError:
            threading.Event().wait(0.1)
    raise AssertionError(f"the host itself cannot fetch {url}")


async def test_nodes_and_runners_cannot_reach_link_local_addresses(engine_url, tmp_path):
    provider = LocalProvider(base_url=engine_url)
    provider.installation = f"test-{uuid.uuid4().hex[:8]}"
    pool = RunnerPool(provider)
    infra = str(uuid.uuid4())
    key = tmp_path / "id_ed25519"
    key.write_text("key")
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "credentials").write_text(SECRET)
    with _link_local_services(tmp_path / "served") as (port, routed_port):
        held, routed = f"http://{HELD}:{port}/", f"http://{ROUTED}:{routed_port}/credentials"
        # the services are there: the host itself reads both
        assert _fetch_from_host(held) == SECRET
        assert _fetch_from_host(routed) == SECRET
        try:
            provider.launch(NodeSpec(infrastructure_id=infra, vm_id=0, name="probe"))
            (node,) = docker.DockerClient(base_url=engine_url).containers.list(
                filters={"label": f"orbis.infrastructure={infra}", "name": "probe"})
            runner = await pool.get(infra, tmp_path / "runner", key)

            def probe_node(*args: str) -> str:
                run = node.exec_run(["python3", "-c", *args])
                assert run.exit_code == 0, run.output.decode()
                return str(run.output.decode())

            async def probe_runner(*args: str) -> str:
                code, out = await runner.run(["python3", "-c", *args], {}, timeout=30, tag="t")
                assert code == 0, out
                return out

            node_gw = probe_node(GATEWAY).strip()
            runner_gw = (await probe_runner(GATEWAY)).strip()
            seen = {
                "node": json.loads(probe_node(PROBE, f"http://{node_gw}:{port}/", held, routed)),
                "runner": json.loads(await probe_runner(PROBE, f"http://{runner_gw}:{port}/",
                                                        held, routed)),
            }  # fmt: skip
            for name, gateway in (("node", node_gw), ("runner", runner_gw)):
                # the host's own address on the bridge answers: the probe can succeed ...
                assert seen[name][f"http://{gateway}:{port}/"] == f"200 {SECRET}", seen
                # ... and neither link-local service does, refused at once rather than dropped
                for url in (held, routed):
                    got = seen[name][url]
                    assert got == "refused" or got.startswith("unreachable"), (name, url, seen)
        finally:
            await pool.close()
            provider.cleanup(infra)
