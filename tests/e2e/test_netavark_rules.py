"""The iptables rules `scripts/engine.sh rules` sets keep podman's isolated networks isolated on a
host that starts from nothing, whatever netavark does afterwards (docs/local-backend.md#network-
backend).

The host's own firewall has a history (earlier engines, earlier tests), and the end-to-end
isolation test passed on the machine where the rule was written because netavark's chains
happened to exist there before our rule: on a new machine netavark then put its
accept-all-from-the-subnet jump in front of ours. So this test makes a new host: a network
namespace with empty iptables, where it runs `engine.sh rules`, then the real netavark (the
binary podman runs) to attach "containers" (namespaces) to three isolated networks, and tears
one down, as destroying a user's last node does. A TCP connect from the first network to the
second must time out before and after. Without the rule the connect succeeds after the
teardown: the second test runs the same steps on an empty firewall and expects just that, so
the first can fail. A third starts from the order an older engine.sh left. Needs root and
Debian's netavark; about 3 s each."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
NETAVARK = Path("/usr/lib/podman/netavark")
PORT = 8022
MARK = "orbis: isolated networks stay isolated"  # the comment on engine.sh's jump

# a TCP connect from inside a namespace: "open", "refused" or "timeout"
CONNECT = """
import socket, sys
s = socket.socket()
s.settimeout(1.5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("open")
except socket.timeout:
    print("timeout")
except OSError:
    print("refused")
"""


def _run(*argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr}"
    return done.stdout


class Host:
    """A namespace standing for a new host, and the 'containers' netavark attaches to it."""

    def __init__(self, tag: str, tmp: Path) -> None:
        self.tag, self.tmp, self.name = tag, tmp, f"orbis-host-{tag}"
        self.listeners: list[subprocess.Popen[bytes]] = []

    def sh(self, *argv: str, netns: str | None = None, stdin: str | None = None) -> str:
        return _run("ip", "netns", "exec", netns or self.name, *argv, stdin=stdin)

    def _options(self, net: str, container: str, address: str) -> str:
        prefix = address.rsplit(".", 1)[0]
        return json.dumps({
            "container_id": hashlib.sha256(container.encode()).hexdigest(),
            "container_name": container,
            "networks": {net: {"static_ips": [address], "interface_name": "eth0"}},
            "network_info": {net: {
                "name": net, "id": hashlib.sha256(net.encode()).hexdigest(), "driver": "bridge",
                "network_interface": f"ot{self.tag}{net}",
                "subnets": [{"subnet": f"{prefix}.0/24", "gateway": f"{prefix}.1"}],
                "ipv6_enabled": False, "internal": False, "dns_enabled": False,
                "ipam_options": {"driver": "host-local"}, "options": {"isolate": "true"},
            }},
        })  # fmt: skip

    def attach(self, net: str, address: str, name: str) -> str:
        """A namespace on isolated network `net` at `address`, listening on PORT."""
        container = f"orbis-ctr-{self.tag}{name}"
        _run("ip", "netns", "add", container)
        self.netavark("setup", container, self._options(net, container, address))
        serve = ["ip", "netns", "exec", container, sys.executable, "-m", "http.server",
                 "--bind", address, str(PORT)]  # fmt: skip
        self.listeners.append(
            subprocess.Popen(serve, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        return container

    def netavark(self, verb: str, container: str, options: str) -> None:
        self.sh(str(NETAVARK), "--config", str(self.tmp), verb, f"/run/netns/{container}",
                stdin=options)  # fmt: skip

    def detach(self, net: str, container: str, address: str) -> None:
        self.netavark("teardown", container, self._options(net, container, address))

    def reach(self, container: str, address: str) -> str:
        """From `container`, the answer of `address`:PORT (waiting out its listener's start)."""
        for _ in range(50):
            seen = self.sh(sys.executable, "-c", CONNECT, address, str(PORT), netns=container)
            if seen.strip() != "refused":
                return seen.strip()
            time.sleep(0.1)
        return "refused"

    def forward_chain(self) -> list[str]:
        return self.sh("iptables", "-S", "FORWARD").splitlines()[1:]


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    if os.geteuid() != 0:
        pytest.fail("needs root (ip netns, iptables), as scripts/engine.sh does", pytrace=False)
    if not NETAVARK.exists() or not shutil.which("iptables"):
        pytest.fail("netavark or iptables is missing: run scripts/setup-host.sh", pytrace=False)
    made = Host(secrets.token_hex(2), tmp_path)
    _run("ip", "netns", "add", made.name)
    try:
        yield made
    finally:
        for listener in made.listeners:
            listener.kill()
            listener.wait()
        names = _run("ip", "netns", "list")
        for line in names.splitlines():
            name = line.split()[0]
            if name == made.name or name.startswith(f"orbis-ctr-{made.tag}"):
                with suppress(AssertionError):
                    _run("ip", "netns", "del", name)


def _teardown_of_carols_network(host: Host) -> str:
    """Three users' isolated networks, then carol's loses its last container: what Alice's node
    then sees of Bob's."""
    alice = host.attach("a", "10.231.1.2", "alice1")
    host.attach("a", "10.231.1.3", "alice2")
    host.attach("b", "10.231.2.2", "bob")
    carol = host.attach("c", "10.231.3.2", "carol")
    assert host.reach(alice, "10.231.1.3") == "open"  # the probe works inside a network
    assert host.reach(alice, "10.231.2.2") == "timeout"
    host.detach("c", carol, "10.231.3.2")
    return host.reach(alice, "10.231.2.2")


def test_isolation_outlives_another_networks_last_container_on_a_new_host(host: Host) -> None:
    assert host.forward_chain() == []  # a host with no history
    host.sh(str(REPO / "scripts/engine.sh"), "rules")
    assert _teardown_of_carols_network(host) == "timeout", host.forward_chain()
    # netavark's accept-all jump is behind ours, where netavark found it
    chain = host.forward_chain()
    ours = [i for i, rule in enumerate(chain) if MARK in rule]
    theirs = [i for i, rule in enumerate(chain) if "-j NETAVARK_FORWARD" in rule]
    assert len(ours) == 1 and len(theirs) == 1 and ours[0] < theirs[0], chain


def test_without_the_rules_netavark_opens_every_network(host: Host) -> None:
    """The control: the same steps on a host without our rules let Alice reach Bob, so the test
    above can fail. If this fails, netavark no longer deletes the shared jump (a newer netavark):
    our rule may then be dropped (docs/local-backend.md#network-backend)."""
    assert _teardown_of_carols_network(host) == "open", host.forward_chain()


def test_rules_put_right_the_order_an_older_start_left(host: Host) -> None:
    """A host where engine.sh of before (d181321) ran after netavark: netavark's accept jump
    first, ours behind it. The next start puts ours first and keeps one copy of each."""
    for chain in ("NETAVARK_FORWARD", "NETAVARK_ISOLATION_1"):
        host.sh("iptables", "-N", chain)
    host.sh("iptables", "-A", "FORWARD", "-m", "comment", "--comment",
            "netavark firewall plugin rules", "-j", "NETAVARK_FORWARD")  # fmt: skip
    host.sh("iptables", "-A", "FORWARD", "-m", "comment", "--comment", MARK, "-j",
            "NETAVARK_ISOLATION_1")  # fmt: skip
    for _ in range(2):  # and a second start changes nothing
        host.sh(str(REPO / "scripts/engine.sh"), "rules")
        chain = host.forward_chain()
        assert len(chain) == 2 and MARK in chain[0] and "NETAVARK_FORWARD" in chain[1], chain
    assert _teardown_of_carols_network(host) == "timeout", host.forward_chain()
