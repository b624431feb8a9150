"""An infrastructure's bridge network on the local back-end, isolated from every other one's.

Nodes of different infrastructures (different users) must not reach each other. Podman isolates
a bridge network only when it is created with the `isolate` option (netavark, the backend
scripts/containers.conf selects: its NETAVARK_ISOLATION chains, whose shared jump
scripts/engine.sh keeps; CNI: the firewall plugin's `ingressPolicy: same-bridge`); traffic
between two isolated networks is
dropped, while traffic inside one network and egress through the host's NAT are not affected.
The option is podman's own, so it goes through podman's libpod API (its Docker-compatible
endpoint answers "not a recognized option"). A Docker daemon isolates user-defined bridge
networks from each other by default (its DOCKER-ISOLATION chains), so there the Docker API is
used as it is.

Every bridge is named `orbis` + 10 hex digits on both engines: besides avoiding stale CNI
rules (below), that name is what the host's link-local guard (scripts/linklocal-guard.nft,
installed by scripts/engine.sh) matches, so no container on an Orbis network reaches the cloud
metadata service through the host.
"""

from __future__ import annotations

import secrets
from typing import Any

import docker
import docker.errors
import requests.exceptions

# The oldest libpod API that podman 4.x serves (its MinAPIVersion); the same socket serves both.
LIBPOD_NETWORK_CREATE = "/v4.0.0/libpod/networks/create"
ISOLATE = {"isolate": "true"}
DOCKER_BRIDGE_NAME = "com.docker.network.bridge.name"
DOCKER_MTU = "com.docker.network.driver.mtu"


def bridge_name() -> str:
    """A bridge interface name of podman's 15-character limit that no other network had.
    CNI's firewall plugin keeps an isolated bridge's rules after its network is removed, and
    podman reuses names (cni-podman1, 2, ...): a later network that got a reused name would be
    cut off from every other bridge (and, not isolated, mistaken for isolated). A fresh random
    name per network never meets such a leftover rule."""
    return "orbis" + secrets.token_hex(5)


def libpod_network_body(name: str, labels: dict[str, str],
                        mtu: int | None = None) -> dict[str, Any]:  # fmt: skip
    """The JSON body of libpod's `POST /networks/create` (podman 4.x `types.Network`)."""
    options = {**ISOLATE, **({"mtu": str(mtu)} if mtu else {})}
    return {"name": name, "driver": "bridge", "labels": labels, "options": options,
            "network_interface": bridge_name()}  # fmt: skip


def create_isolated_network(
    client: docker.DockerClient, name: str, labels: dict[str, str], *, podman: bool, timeout: float,
    mtu: int | None = None,
) -> None:
    """Create bridge network `name` with `labels`, isolated from other infrastructures' (its
    bridge and veths of `mtu` bytes if given, else the engine's default, 1500).
    Raises docker.errors.APIError as the Docker SDK would (a taken name: 409 or "already")."""
    if not podman:
        # an orbis* bridge, as on podman: the host's link-local guard matches that name
        options = {DOCKER_BRIDGE_NAME: bridge_name(), **({DOCKER_MTU: str(mtu)} if mtu else {})}
        client.networks.create(name, driver="bridge", labels=labels, options=options)
        return
    api = client.api  # a requests.Session bound to the engine's socket (unix, tcp or ssh)
    response = api.post(
        f"{api.base_url}{LIBPOD_NETWORK_CREATE}",
        json=libpod_network_body(name, labels, mtu),
        timeout=timeout,
    )
    try:
        response.raise_for_status()
    except requests.exceptions.HTTPError as err:
        # The SDK's own conversion: APIError (NotFound for 404) with libpod's "message".
        docker.errors.create_api_error_from_http_exception(err)
