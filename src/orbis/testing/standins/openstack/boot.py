"""Servers of the OpenStack stand-in as real system containers (the node image: systemd + sshd).

Through the Docker API at DOCKER_HOST (podman): each Neutron network a server is plugged into is
a podman network of the same CIDR, made on first use; a tenant network is `internal` (its bridge
has no address on the host, so the host cannot reach it: as on a cloud, only floating IPs are
reachable), an external one (the floating-IP pool) is a plain bridge routed by the host, so any
container on an ordinary podman bridge reaches the floating IPs too. A port's fixed IP and a
floating IP are given to the container as static addresses, so what Neutron reports is what the
container has. Boot: the Nova key pair goes into root's authorized_keys before start; user_data
is applied by `exec` once systemd runs (userdata.py). A boot-time Cinder volume is a named
volume mounted at /mnt/<device> (a container cannot get a block device it could mount).

Everything made carries the label `orbis.standin=<tag>`, so `leftovers()` shows what is left
and `close()` removes it all.
"""

from __future__ import annotations

import io
import ipaddress
import os
import tarfile
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors

from orbis.providers.local_network import bridge_name
from orbis.testing.engine_read import read_retrying
from orbis.testing.standins.openstack.userdata import UserDataError, script

LABEL = "orbis.standin"
# candidate floating-IP ranges: documentation ranges (not private in Orbis's sense, routed nowhere)
PUBLIC_CANDIDATES = [str(n) for r in ("203.0.113.0/24", "198.51.100.0/24")
                     for n in ipaddress.ip_network(r).subnets(new_prefix=26)]  # fmt: skip
READY_TIMEOUT = 30.0


class BootError(RuntimeError):
    """A server could not be booted (the Nova fault message)."""


@dataclass
class Nic:
    network_id: str  # Neutron network id
    cidr: str
    gateway: str
    address: str
    external: bool = False


@dataclass
class ServerBoot:
    """What a server boots with (read by the boot thread; no stand-in state is shared)."""

    server_id: str
    hostname: str
    nics: list[Nic]
    authorized_key: str | None = None
    user_data: str | None = None
    volumes: dict[str, str] = field(default_factory=dict)  # Cinder volume id -> device (/dev/vdb)


class ContainerBoot:
    """Creates, connects and removes the containers and podman networks of one stand-in."""

    def __init__(self, docker_url: str | None = None, image: str | None = None) -> None:
        url = docker_url or os.environ.get("DOCKER_HOST")
        if not url:
            raise BootError("ContainerBoot needs DOCKER_HOST (or docker_url)")
        self.client = docker.DockerClient(base_url=url, timeout=60)
        self.image = image or os.environ.get("ORBIS_NODE_IMAGE") or "orbis-node:latest"
        self.tag = uuid.uuid4().hex[:10]
        self.labels = {LABEL: self.tag}
        self._networks: dict[str, str] = {}  # Neutron network id -> podman network name
        self._containers: dict[str, str] = {}  # server id -> container id
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="standin-boot")
        self.logs: dict[str, list[str]] = {}  # server id -> what the boot did (for tests)

    # -- networks ---------------------------------------------------------------------------
    def free_public_cidr(self) -> str:
        """A floating-IP range no podman network uses yet."""
        taken = [ipaddress.ip_network(s["subnet"]) for n in self._libpod("GET", "/networks/json")
                 for s in n.get("subnets") or []]  # fmt: skip
        for cidr in PUBLIC_CANDIDATES:
            if not any(ipaddress.ip_network(cidr).overlaps(t) for t in taken):
                return cidr
        raise BootError(f"no free public range among {PUBLIC_CANDIDATES}")

    def network(self, nic: Nic) -> str:
        """The podman network of a Neutron network, made on first use. `internal` for a
        tenant network: its bridge gets no host address, so the host cannot reach it."""
        if nic.network_id in self._networks:
            return self._networks[nic.network_id]
        name = f"orbis-standin-{self.tag}-{nic.network_id[:8]}"
        # no gateway on a tenant network: netavark gives an internal bridge the gateway
        # address (then the host reaches it) unless the subnet names none
        subnet = {"subnet": nic.cidr, **({"gateway": nic.gateway} if nic.external else {})}
        self._libpod("POST", "/networks/create", {
            "name": name, "driver": "bridge", "internal": not nic.external,
            "network_interface": bridge_name(),  # never a name a stale isolation rule names
            "subnets": [subnet],
            "labels": self.labels | {f"{LABEL}.network": nic.network_id}})  # fmt: skip
        self._networks[nic.network_id] = name
        return name

    def remove_network(self, network_id: str) -> None:
        name = self._networks.pop(network_id, None)
        if name:
            with suppress(docker.errors.NotFound):
                self.client.networks.get(name).remove()

    def _libpod(self, method: str, path: str, body: Any = None) -> Any:
        """podman's own API (v4): network options the Docker-compatible one cannot set."""
        api = self.client.api
        answer = api._result(api._post_json(api.base_url + "/v4.0.0/libpod" + path, data=body)
                             if method == "POST" else api._get(api.base_url + "/v4.0.0/libpod"
                                                               + path), json=True)  # fmt: skip
        return answer

    # -- servers ----------------------------------------------------------------------------
    def boot(self, spec: ServerBoot) -> Future[None]:
        """Start booting a server in the background; the future fails with BootError."""
        names = [self.network(n) for n in spec.nics]  # in the caller: network errors are early
        return self._pool.submit(self._boot, spec, names)

    def _boot(self, spec: ServerBoot, names: list[str]) -> None:
        log = self.logs.setdefault(spec.server_id, [])
        first, *others = list(zip(spec.nics, names, strict=True))
        api = self.client.api
        mounts = [f"{self._volume(vid)}:/mnt/{device.rsplit('/', 1)[-1]}"
                  for vid, device in spec.volumes.items()]  # fmt: skip
        endpoint = api.create_endpoint_config(ipv4_address=first[0].address)
        try:
            created = api.create_container(
                self.image, command=["/sbin/init"], hostname=spec.hostname,
                name=f"orbis-standin-{self.tag}-{spec.server_id[:8]}",
                labels=self.labels | {f"{LABEL}.server": spec.server_id},
                stop_signal="SIGRTMIN+3", detach=True,
                host_config=api.create_host_config(network_mode=first[1], binds=mounts),
                networking_config=api.create_networking_config({first[1]: endpoint}))
            cid = created["Id"]
            self._containers[spec.server_id] = cid
            if spec.authorized_key:  # Nova's key pair: root's authorized_keys, before boot
                api.put_archive(cid, "/", _tar({"root/.ssh/authorized_keys":
                                                spec.authorized_key.strip() + "\n"},
                                               folder="root/.ssh"))
            api.start(cid)
            for nic, name in others:
                api.connect_container_to_network(cid, name, ipv4_address=nic.address)
            log.append(f"container {cid[:12]} started")
            if spec.user_data:
                self._apply_user_data(cid, spec.user_data, log)
        except (docker.errors.DockerException, UserDataError) as exc:
            log.append(f"boot failed: {exc}")
            raise BootError(f"boot failed: {exc}") from None

    def _apply_user_data(self, cid: str, user_data: str, log: list[str]) -> None:
        text, ignored = script(user_data)
        if ignored:
            log.append(f"cloud-config keys ignored: {', '.join(ignored)}")
        api = self.client.api
        api.put_archive(cid, "/var/lib", _tar({"cloud/user-data.sh": text}, mode=0o700,
                                            folder="cloud"))
        deadline = time.monotonic() + READY_TIMEOUT
        while True:  # useradd and friends need a booted system (D-Bus, /run): wait for it
            state = self._exec(cid, ["systemctl", "is-system-running", "--wait"])[1].strip()
            if state in ("running", "degraded") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        code, output = self._exec(cid, ["/var/lib/cloud/user-data.sh"])
        log.append(f"user_data exit {code}: {output.strip()[-300:]}")
        if code != 0:
            raise UserDataError(f"user_data failed (exit {code}): {output.strip()[-300:]}")

    def _exec(self, cid: str, argv: list[str]) -> tuple[int, str]:
        api = self.client.api
        run = api.exec_create(cid, argv)
        output = api.exec_start(run["Id"]).decode(errors="replace")
        return api.exec_inspect(run["Id"])["ExitCode"] or 0, output

    def attach(self, server_id: str, nic: Nic) -> None:
        """Plug a running server into a network at a given address (a floating IP)."""
        self.client.api.connect_container_to_network(self._containers[server_id],
                                                     self.network(nic), ipv4_address=nic.address)

    def detach(self, server_id: str, network_id: str) -> None:
        cid, name = self._containers.get(server_id), self._networks.get(network_id)
        if cid and name:
            with suppress(docker.errors.NotFound, docker.errors.APIError):
                self.client.api.disconnect_container_from_network(cid, name, force=True)

    def delete(self, server_id: str) -> None:
        cid = self._containers.pop(server_id, None)
        if cid:
            with suppress(docker.errors.NotFound):
                self.client.api.remove_container(cid, force=True)

    def container(self, server_id: str) -> str | None:
        """The container id of a server (for tests that look inside)."""
        return self._containers.get(server_id)

    def exec(self, server_id: str, command: str) -> tuple[int, str]:
        """A shell command in a server's container, for tests that look inside: a read, asked
        again while it prints nothing (orbis.testing.engine_read says why)."""
        cid = self._containers[server_id]
        return read_retrying(lambda: self._exec(cid, ["sh", "-c", command]))

    # -- volumes ----------------------------------------------------------------------------
    def _volume(self, volume_id: str) -> str:
        name = f"orbis-standin-{self.tag}-vol-{volume_id[:8]}"
        self.client.volumes.create(name, labels=self.labels | {f"{LABEL}.volume": volume_id})
        return name

    def remove_volume(self, volume_id: str) -> None:
        with suppress(docker.errors.NotFound, docker.errors.APIError):
            self.client.volumes.get(f"orbis-standin-{self.tag}-vol-{volume_id[:8]}").remove()

    # -- the whole lot ----------------------------------------------------------------------
    def leftovers(self) -> dict[str, list[str]]:
        """Names of the containers, networks and volumes of this stand-in still in the engine."""
        label = f"{LABEL}={self.tag}"
        return {
            "containers": [c.name for c in self.client.containers.list(
                all=True, filters={"label": label})],
            "networks": [n.name for n in self.client.networks.list(filters={"label": label})],
            "volumes": [v.name for v in self.client.volumes.list(filters={"label": label})],
        }  # fmt: skip

    def close(self) -> None:
        """Remove everything this stand-in made (containers first: they hold the rest)."""
        self._pool.shutdown(wait=True)
        label = f"{LABEL}={self.tag}"
        for c in self.client.containers.list(all=True, filters={"label": label}):
            with suppress(docker.errors.NotFound):
                c.remove(force=True)
        for n in self.client.networks.list(filters={"label": label}):
            with suppress(docker.errors.NotFound):
                n.remove()
        for v in self.client.volumes.list(filters={"label": label}):
            with suppress(docker.errors.NotFound):
                v.remove(force=True)
        self._networks.clear()
        self._containers.clear()
        self.client.close()


def _tar(files: dict[str, str], mode: int = 0o600, folder: str | None = None) -> bytes:
    """A tar of files owned by root for put_archive; `folder` (0700) made first if given."""
    buffer = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        if folder:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o700, now
            tar.addfile(info)
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), mode, now
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
