"""The local back-end: nodes are system containers (systemd as PID 1, sshd) on this machine.

It talks the Docker Engine API, served by a Docker daemon or by `podman system service`
(scripts/engine.sh). One bridge network per infrastructure; every container, network and data
volume carries the Orbis labels, so `list_owned` and `cleanup` find them whatever the store says.
A node's data disks (`compute.volumes`) are named engine volumes: they outlive stop/start, go
with their node on destroy, and an existing volume named by `volume_id` is mounted, never removed.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container
from docker.types import Mount

from orbis import config
from orbis.model.infrastructure import Volume
from orbis.model.states import NodeState
from orbis.overlay.rights import ROUTES, TUNNEL
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    LABEL_NODE,
    LABEL_OWNER,
    LABEL_PUBLIC,
    LABEL_RUNNER,
    LABEL_VM_ID,
    Image,
    Machine,
    NodeSpec,
    NotFound,
    Provider,
    ProviderError,
    QuotaUse,
    Transient,
)
from orbis.providers.local_network import create_isolated_network

# on images made by snapshot(): which infrastructure's node, which installation
SNAPSHOT_LABEL = "orbis.snapshot.infrastructure"
SNAPSHOT_INSTALLATION = "orbis.snapshot.installation"
SITE_LABEL = "orbis.site"  # local_sites.LABEL_SITE: the site a container was made for
STOP_TIMEOUT = 10  # seconds systemd gets to shut down before SIGKILL (stop, reboot)
CLEANUP_THREADS = 32  # removals at once when an infrastructure is destroyed

_ENGINE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # a container id or name
_LIMIT_ERROR = re.compile(r"cgroup|memory|cpu|swap", re.IGNORECASE)

_STATES = {"running": NodeState.RUNNING, "restarting": NodeState.PENDING}
_STATES |= {"removing": NodeState.DELETING, "dead": NodeState.FAILED}
# podman says "configured" for "created"
_STATES |= dict.fromkeys(
    ("created", "configured", "exited", "stopped", "paused"), NodeState.STOPPED
)


def _infra_tag(infrastructure_id: str) -> str:
    # The whole id: a UUID1's first 8 digits repeat every ~7 minutes, names must not.
    return infrastructure_id


def network_name(infrastructure_id: str) -> str:
    return f"orbis-{_infra_tag(infrastructure_id)}"


def _slug(text: str, keep: str = "") -> str:
    """A string safe in container names and hostnames."""
    return re.sub(rf"[^a-zA-Z0-9{keep}-]+", "-", text).strip("-.").lower() or "node"


def volume_name(infrastructure_id: str, node_name: str, vm_id: int, index: int) -> str:
    """The engine volume made for data disk `index` of a node."""
    return f"orbis-{_infra_tag(infrastructure_id)}-{_slug(node_name)}-{vm_id}-disk{index}"


def _disk(volume: Volume) -> str:
    """How a node's log names a data disk: "disk.1", or "disk.1 (my_storage)"."""
    disk = f"disk.{volume.index}"
    return disk if volume.name in ("", disk) else f"{disk} ({volume.name})"


def _explain(err: Exception) -> str:
    """The engine's own message, without the SDK's HTTP preamble."""
    if isinstance(err, docker.errors.APIError) and err.explanation:
        return str(err.explanation)
    return str(err)


def _conflict(err: docker.errors.APIError) -> bool:
    """A name already taken (Docker says 409; podman says 500 "... already in use/exists")."""
    return err.status_code == 409 or "already" in _explain(err)


@contextmanager
def _errors(what: str) -> Iterator[None]:
    """Turn SDK/HTTP errors into the typed errors of base.py, with the engine's own words."""
    try:
        yield
    except ProviderError:
        raise
    except docker.errors.NotFound as err:  # ImageNotFound is a subclass
        raise NotFound(f"local: {what}: {_explain(err)}") from None
    except docker.errors.APIError as err:
        busy = err.status_code is not None and err.status_code >= 502
        raise (Transient if busy else ProviderError)(f"local: {what}: {_explain(err)}") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as err:
        raise Transient(f"local: {what}: container engine unreachable ({err})") from None
    except docker.errors.DockerException as err:
        raise ProviderError(f"local: {what}: {err}") from None


class LocalProvider(Provider):
    name = "local"

    ssh_timeout = 120.0
    private_reachable = True  # container addresses are routed to the host

    def __init__(self, base_url: str | None = None, timeout: int = 120) -> None:
        self._settings = config.load()
        self._base_url = base_url
        self._timeout = timeout
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()  # guards client creation and network creation
        self._is_podman = False
        # networks this provider made or saw: a launch does not list them again (20 launches
        # at once queued on the lock for one list call each); forgotten by cleanup
        self._networks: set[str] = set()
        # images found on the engine: the 20 launches of a deployment ask for one once (an
        # image removed later fails the creation itself, which forgets it: see launch)
        self._images: set[str] = set()

    # -- connection -------------------------------------------------------------------------

    @property
    def client(self) -> docker.DockerClient:
        """The first engine endpoint that answers, connected lazily (and once)."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> docker.DockerClient:
        tried = []
        for url in (
            [self._base_url] if self._base_url else config.docker_socket_candidates(self._settings)
        ):
            try:
                client = docker.DockerClient(base_url=url, timeout=self._timeout)
                client.ping()
                components = client.version().get("Components") or []
            except Exception as err:  # noqa: BLE001 - any failure means "try the next one"
                tried.append(f"{url} ({type(err).__name__})")
                continue
            self._is_podman = any("podman" in c.get("Name", "").lower() for c in components)
            return client
        tried_text = ", ".join(tried)
        raise Transient(
            f"local: no container engine answers (tried {tried_text}); "
            "start one with scripts/engine.sh start"
        )

    # -- verbs ------------------------------------------------------------------------------

    def prepare(self, infrastructure_id: str) -> None:
        self._network(infrastructure_id)

    def _network(self, infrastructure_id: str) -> str:
        """The network a new node of this infrastructure is created on (made if missing)."""
        return self._ensure_network(infrastructure_id, network_name(infrastructure_id))

    def _ensure_network(self, infrastructure_id: str, name: str, mtu: int | None = None) -> str:
        if name in self._networks:
            return name
        with _errors(f"network {name}"):
            client = self.client
            with self._lock:  # Docker accepts duplicate names: never create two in parallel
                if name in self._networks:  # made by the launch that held the lock before
                    return name
                label = self._infra_label(infrastructure_id)
                found = client.networks.list(filters={"label": label})
                if not any(n.name == name for n in found):
                    try:
                        create_isolated_network(
                            client,
                            name,
                            self._labels(infrastructure_id),
                            podman=self._is_podman,
                            timeout=self._timeout,
                            mtu=mtu,
                        )
                    except docker.errors.APIError as err:
                        if not _conflict(err):  # else another process made it just now
                            raise
                self._networks.add(name)
        return name

    def launch(self, spec: NodeSpec) -> Machine:
        """Create and start the node's container. Its name is fixed by the node, so a container
        an earlier try left (a crash, a retry) is found by the name conflict and started if need
        be: no listing before each creation (one engine call less per node, and the engine's
        list walks every container it has)."""
        node = f"{spec.name}.{spec.vm_id}"
        what = f"node {node} of {spec.infrastructure_id}"
        net = self._network(spec.infrastructure_id)
        image = self._image(spec.image)
        name = f"orbis-{_infra_tag(spec.infrastructure_id)}-{_slug(spec.name)}-{spec.vm_id}"
        labels = {
            **self._labels(spec.infrastructure_id),
            LABEL_NODE: node,
            LABEL_VM_ID: str(spec.vm_id),
            LABEL_PUBLIC: "true" if spec.public else "false",
            **_owner(spec),
        }
        limits: dict[str, Any] = {}
        if spec.num_cpus:
            limits["nano_cpus"] = int(spec.num_cpus * 1e9)
        if spec.mem_size:
            limits["mem_limit"] = int(spec.mem_size)
        with _errors(what):
            mounts, warnings = self._volumes(spec, what)
            try:
                container = self._create_and_start(spec, image, name, net, labels, limits, mounts)
            except docker.errors.NotFound as err:
                if "network" not in _explain(err).lower():
                    self._images.discard(image)  # asked again next time, with its hint
                    raise
                # a network remembered as made was removed meanwhile (another server's sweep):
                # forget it; the deployer's retry makes it again
                self._networks.clear()
                raise Transient(f"local: {what}: {_explain(err)}") from None
            except docker.errors.APIError as err:
                if _conflict(err):  # made before: by an earlier try, or a parallel launch
                    existing = self._find(spec.infrastructure_id, node)
                    if existing is None:
                        raise
                    return self._resume(existing, spec)
                if not limits or not _LIMIT_ERROR.search(_explain(err)):
                    raise
                # Some hosts cannot enforce cgroup limits: run the node without them.
                warnings.append(f"cpu/memory limits not applied: {_explain(err)}")
                container = self._create_and_start(spec, image, name, net, labels, {}, mounts)
            container.reload()  # addresses are known only once it runs
            return self._machine(container, tuple(warnings))

    def _resume(self, existing: Container, spec: NodeSpec) -> Machine:
        """A node's container made before this launch: started (with the key) if it is not
        running. Run inside `_errors`."""
        if existing.status != "running":
            if spec.ssh_public_key:
                existing.put_archive("/", _ssh_key_tar(spec.ssh_public_key))
            try:
                existing.start()
            except docker.errors.APIError:
                existing.reload()  # fine if a parallel launch started it meanwhile
                if existing.status != "running":
                    raise
            existing.reload()
        return self._machine(existing)

    def _create_and_start(
        self,
        spec: NodeSpec,
        image: str,
        name: str,
        net: str,
        labels: dict[str, str],
        limits: dict[str, Any],
        mounts: list[Mount],
    ) -> Container:
        # systemd as PID 1. Podman recognises /sbin/init and sets itself up (tmpfs on /run,
        # /run/lock, /tmp, writable cgroup, container=podman); a Docker daemon needs it spelled
        # out (untested here: no Docker daemon on the build machine).
        host: dict[str, Any] = {**limits, **self._node_options(spec)}
        environment: dict[str, str] | None = None
        if not self._is_podman:
            host |= {
                "tmpfs": {"/run": "rw", "/run/lock": "rw", "/tmp": "rw"},
                "binds": {"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
                "cgroupns": "host",
            }
            environment = {"container": "docker"}
        if mounts:
            host["mounts"] = mounts
        api = self.client.api
        # The engine API itself rather than the SDK's containers.create: that one cannot set
        # stop_timeout and inspects the new container once more before returning it.
        made = api.create_container(
            image,
            command=["/sbin/init"],
            name=name,
            labels=labels,
            hostname=_slug(spec.hostname or f"{spec.name}-{spec.vm_id}", keep="."),
            environment=environment,
            stop_signal="SIGRTMIN+3",
            # what a forced removal (destroy) waits before SIGKILL: nothing, as a cloud deletes
            # a VM. stop and reboot give systemd STOP_TIMEOUT explicitly.
            stop_timeout=0,
            detach=True,
            host_config=api.create_host_config(network_mode=net, **host),
            networking_config=api.create_networking_config({net: api.create_endpoint_config()}),
        )
        container: Container = self.client.containers.prepare_model({"Id": made["Id"]})
        try:
            for other in self._extra_networks(spec):  # before boot: the node starts with them
                api.connect_container_to_network(container.id, other)
            # The key goes in before boot, so sshd never runs without it and no exec is needed.
            container.put_archive("/", _ssh_key_tar(spec.ssh_public_key))
            container.start()
        except Exception:
            container.remove(force=True)  # no half-made node for the next launch to find
            raise
        return container

    def _extra_networks(self, spec: NodeSpec) -> list[str]:
        """Networks a node joins besides the one it is created on (local sites: public)."""
        return []

    def _node_options(self, spec: NodeSpec) -> dict[str, Any]:
        """More container options for one node: the kernel rights an overlay node needs
        (overlay/rights.py), given at creation because a container cannot take them later."""
        if spec.net_rights == ROUTES:
            return {"cap_add": ["NET_ADMIN"]}
        if spec.net_rights == TUNNEL:
            return {"cap_add": ["NET_ADMIN"], "devices": ["/dev/net/tun:/dev/net/tun:rwm"],
                    # loose reverse-path check: a central point gets replies from its own
                    # site through that site's router, not the tunnel they left by
                    "sysctls": {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "2"}}
        return {}

    def _volumes(self, spec: NodeSpec, what: str) -> tuple[list[Mount], list[str]]:
        """The node's data disks as mounts of named engine volumes (made here when new), and
        warnings for what a container cannot do as a VM would. Run inside `_errors`."""
        volumes = spec.compute.volumes if spec.compute else []
        mounted = [v for v in volumes if (v.fs_type or "").lower() != "swap"]
        # Checked first, so that a node that cannot start has nothing made for it.
        targets: dict[str, str] = {}
        attached: dict[int, str] = {}
        for volume in mounted:
            target = volume.mount_path or f"/mnt/disk{volume.index}"
            if target in targets:
                raise ProviderError(f"local: {what}: {targets[target]} and {_disk(volume)} "
                                    f"are both mounted at {target}")  # fmt: skip
            targets[target] = _disk(volume)
            if volume.volume_id:
                source = volume.volume_id.rstrip("/").rsplit("/", 1)[-1]
                try:
                    found = self.client.volumes.get(source)
                except docker.errors.NotFound:
                    raise NotFound(
                        f"local: {what}: {_disk(volume)}: volume {source!r} (volume_id "
                        f"{volume.volume_id!r}) does not exist on this container engine"
                    ) from None
                # Any engine volume could hold anyone's data: only the owner's own may be named.
                mark = (found.attrs.get("Labels") or {}).get(LABEL_OWNER)
                if not spec.owner_mark or mark != spec.owner_mark:
                    raise ProviderError(
                        f"local: {what}: {_disk(volume)}: volume {source!r} (volume_id) was not "
                        "created by one of your infrastructures (it carries no owner mark of "
                        "yours): on the local back-end volume_id may only name your own volumes"
                    )
                attached[volume.index] = source
        labels = {**self._labels(spec.infrastructure_id), LABEL_NODE: f"{spec.name}.{spec.vm_id}",
                  **_owner(spec)}  # fmt: skip
        mounts: list[Mount] = []
        warnings: list[str] = []
        sized: list[str] = []
        for volume in volumes:  # in disk order, so are the warnings
            disk = _disk(volume)
            if volume not in mounted:
                warnings.append(f"{disk}: swap disks are not supported in containers; not mounted")
                continue
            if volume.device and volume.device.startswith("/"):
                warnings.append(
                    f"{disk}: device {volume.device} is a host path; host paths are not "
                    "mounted on the local back-end, a named volume is used instead"
                )
            if volume.index in attached:
                source = attached[volume.index]
            else:
                source = volume_name(spec.infrastructure_id, spec.name, spec.vm_id, volume.index)
                self._own_volume(source, labels)
                if volume.size:
                    sized.append(f"{disk} {volume.size / 1e9:.3g} GB")
            target = volume.mount_path or f"/mnt/disk{volume.index}"
            mounts.append(Mount(target=target, source=source, type="volume"))
        if sized:
            warnings.append("data volume sizes are not enforced on the local back-end (the "
                            f"volumes share this host's disk): {', '.join(sized)}")  # fmt: skip
        return mounts, warnings

    def _own_volume(self, name: str, labels: dict[str, str]) -> None:
        """Make the node's volume `name`, or reuse it if an earlier launch made it."""
        try:
            volume = self.client.volumes.get(name)
        except docker.errors.NotFound:
            # a parallel launch may create it meanwhile: the engine then returns that one
            volume = self.client.volumes.create(name, labels=labels)
        found = volume.attrs.get("Labels") or {}
        if any(found.get(k) != v for k, v in labels.items()):
            raise ProviderError(f"local: volume {name} exists but was not made for this node")

    def _image(self, wanted: str | None) -> str:
        """The image to run: `wanted` if it names a local image, else the node image. Other
        clouds' image URLs (one://, ost://...) fall back to the node image; a plain local name
        that does not exist fails this node only."""
        candidate = wanted
        if wanted and "://" in wanted:
            scheme, _, rest = wanted.partition("://")
            candidate = rest if scheme in ("docker", "podman", "local") else None
        name = candidate or self._settings.node_image
        if name in self._images:
            return name
        with _errors(f"image {name}"):
            try:
                self.client.images.get(name)
            except docker.errors.ImageNotFound as err:
                hint = "" if candidate else " (build it with images/node/build.sh)"
                raise NotFound(f"local: image {name} not found: {_explain(err)}{hint}") from None
        self._images.add(name)
        return name

    def inspect(self, provider_id: str) -> Machine:
        container = self._get(provider_id)
        if container is None:
            return Machine(provider_id=provider_id, state=NodeState.OFF)
        return self._machine(container)

    def owner_mark_of(self, provider_id: str) -> str | None:
        if not _ENGINE_ID.fullmatch(provider_id):  # imported text: never part of an API path
            return None
        container = self._get(provider_id)
        return None if container is None else container.labels.get(LABEL_OWNER)

    def destroy(self, provider_id: str) -> None:
        """Remove the container, then the data volumes made for its node (not attached ones)."""
        container = self._get(provider_id)
        if container is not None:
            with _errors(f"remove {provider_id[:12]}"):
                with suppress(docker.errors.NotFound):
                    container.remove(force=True, v=True)
                infra = container.labels.get(LABEL_INFRASTRUCTURE)
                node = container.labels.get(LABEL_NODE)
                if infra and node:
                    self._remove_volumes(infra, node)

    def cleanup(self, infrastructure_id: str) -> None:
        label = self._infra_label(infrastructure_id)
        prefix = network_name(infrastructure_id)
        self._networks = {n for n in self._networks if not n.startswith(prefix)}
        with _errors(f"cleanup of {infrastructure_id}"):
            api = self.client.api
            # the list's summaries are enough: the SDK's containers.list() would inspect each
            # container in turn first (20 calls before the first removal)
            found = [str(c["Id"]) for c in api.containers(all=True, filters={"label": label})
                     if (c.get("Labels") or {}).get(LABEL_INFRASTRUCTURE) == infrastructure_id]
            # each removal waits for its container to die: all at once, not in turn (nodes
            # are made with stop_timeout 0, so that is a SIGKILL, not a systemd shutdown)
            if found:
                with ThreadPoolExecutor(max_workers=min(CLEANUP_THREADS, len(found))) as pool:
                    for result in [pool.submit(_remove_container, api, c) for c in found]:
                        result.result()
            self._remove_volumes(infrastructure_id)  # once no container of ours uses them
            for net in self.client.networks.list(filters={"label": label}):
                with suppress(docker.errors.NotFound):
                    net.remove()

    def _remove_volumes(self, infrastructure_id: str, node: str | None = None) -> None:
        """Remove the volumes labelled with this infrastructure (and node, if given). One still
        in use (another infrastructure's node attached it by volume_id) stays: the
        infrastructure's cleanup, or the orphan sweep at start-up, gets it later."""
        found = self.client.volumes.list(filters={"label": self._infra_label(infrastructure_id)})
        for volume in found:
            labels = volume.attrs.get("Labels") or {}
            # Re-check: podman OR-s label filters, and a volume_id volume is never labelled.
            if labels.get(LABEL_INFRASTRUCTURE) != infrastructure_id:
                continue
            if node is not None and labels.get(LABEL_NODE) != node:
                continue
            try:
                volume.remove()
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as err:
                if err.status_code != 409:  # 409: in use
                    raise

    def images(self) -> list[Image]:
        """The node image, and the snapshots this installation made."""
        image = self._settings.node_image
        found = [Image(id=image, name=f"Orbis local node image ({image})",
                       url=f"docker://{image}", os_distro="debian", os_version="12")]  # fmt: skip
        with _errors("list snapshot images"):
            snapshots = self.client.images.list(filters={"label": SNAPSHOT_LABEL})
        for snap in snapshots:
            if (snap.labels or {}).get(SNAPSHOT_INSTALLATION, "") != (self.installation or ""):
                continue
            for tag in snap.tags:
                found.append(Image(id=snap.id or tag, name=tag, url=f"docker://{tag}"))
        return found

    def quotas(self) -> dict[str, QuotaUse]:
        """This machine's size: containers share it (no per-user limit)."""
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        owned = len(self.list_owned())
        return {"cores": QuotaUse(owned, os.cpu_count() or 1), "ram": QuotaUse(0, memory_mb),
                "instances": QuotaUse(owned, -1)}  # fmt: skip

    def list_owned(self) -> list[Machine]:
        # The engine's list answer is enough: the SDK's containers.list() would inspect each
        # container again, and fails if one is removed meanwhile (as during a destroy).
        with _errors("list containers"):
            found = self.client.api.containers(all=True, filters={"label": self._owner_filter()})
        machines = []
        for summary in found:
            labels = summary.get("Labels") or {}
            if not self._mine(labels) or labels.get(LABEL_RUNNER):  # a runner is no machine
                continue
            # the sites of the local back-end share its engine: each lists its own machines
            # only (else the sweep of orphans took a site's node for a machine "not where
            # its node is" and removed it)
            if (labels.get(SITE_LABEL) or None) != self._site_label():
                continue
            infra = labels.get(LABEL_INFRASTRUCTURE)
            networks = (summary.get("NetworkSettings") or {}).get("Networks") or {}
            preferred = networks.get(network_name(infra)) if infra else None
            ips = [n.get("IPAddress") for n in [preferred, *networks.values()] if n]
            ip = next((str(i) for i in ips if i), None)
            vm_id = str(labels.get(LABEL_VM_ID, ""))
            machines.append(Machine(
                provider_id=str(summary.get("Id", "")),
                state=_STATES.get(str(summary.get("State", "")).lower(), NodeState.UNKNOWN),
                private_ip=ip,
                public_ip=ip if labels.get(LABEL_PUBLIC) == "true" else None,
                infrastructure_id=infra,
                vm_id=int(vm_id) if vm_id.isdigit() else None,
            ))  # fmt: skip
        return machines

    def owned_infrastructures(self) -> set[str]:
        """Infrastructures with containers, networks or volumes here (networks and volumes can
        outlive their nodes)."""
        with _errors("list networks, volumes and runners"):
            nets = self.client.networks.list(filters={"label": self._owner_filter()})
            volumes = self.client.volumes.list(filters={"label": self._owner_filter()})
            runners = self.client.api.containers(all=True, filters={"label": LABEL_RUNNER})
        labels = [n.attrs.get("Labels") or {} for n in [*nets, *volumes]]
        labels += [r.get("Labels") or {} for r in runners]
        ids = {lab.get(LABEL_INFRASTRUCTURE) for lab in labels if self._mine(lab)}
        return {i for i in ids if i} | super().owned_infrastructures()

    def alter(self, provider_id: str, num_cpus: float | None, mem_size: int | None) -> None:
        """Change a running container's CPU and memory limits in place."""
        api = self.client.api  # connecting also learns whether the engine is podman
        with _errors(f"resize {provider_id[:12]}"):
            if self._is_podman:
                # podman's Docker-compatible API has no update call; its own API does
                resources: dict[str, dict[str, int]] = {}
                if num_cpus:
                    resources["cpu"] = {"quota": int(num_cpus * 100_000), "period": 100_000}
                if mem_size:
                    resources["memory"] = {"limit": int(mem_size)}
                url = f"{api.base_url}/v4.0.0/libpod/containers/{provider_id}/update"
                response = api.post(url, json=resources)
                api._raise_for_status(response)
            else:
                api.update_container(
                    provider_id,
                    cpu_quota=int(num_cpus * 100_000) if num_cpus else None,
                    cpu_period=100_000 if num_cpus else None,
                    mem_limit=int(mem_size) if mem_size else None,
                    memswap_limit=-1 if mem_size else None,
                )

    def stop(self, provider_id: str) -> None:
        with _errors(f"stop {provider_id[:12]}"):
            self.client.containers.get(provider_id).stop(timeout=STOP_TIMEOUT)

    def start(self, provider_id: str) -> None:
        with _errors(f"start {provider_id[:12]}"):
            self.client.containers.get(provider_id).start()

    def reboot(self, provider_id: str) -> None:
        with _errors(f"reboot {provider_id[:12]}"):
            self.client.containers.get(provider_id).restart(timeout=STOP_TIMEOUT)

    # -- disk snapshots ---------------------------------------------------------------------
    def snapshot(self, provider_id: str, disk: int, name: str) -> str:
        """Commit the container's file system (its only disk) as a local image. Our node
        labels are blanked in the image: a container later run from it by hand must not look
        like one of ours (the orphan sweep removes those)."""
        if disk != 0:
            raise NotFound(f"local: node {provider_id[:12]} has no disk {disk} (local nodes "
                           f"have one disk, 0)")  # fmt: skip
        container = self._get(provider_id)
        if container is None:
            raise NotFound(f"local: node {provider_id[:12]} does not exist")
        blank = (LABEL_INFRASTRUCTURE, LABEL_NODE, LABEL_VM_ID, LABEL_PUBLIC, LABEL_INSTALLATION)
        mine = {SNAPSHOT_LABEL: container.labels.get(LABEL_INFRASTRUCTURE, ""),
                SNAPSHOT_INSTALLATION: self.installation or ""}  # fmt: skip
        changes = [f'LABEL {k}=""' for k in blank] + [f'LABEL {k}="{v}"' for k, v in mine.items()]
        repository = f"localhost/{_slug(name, keep='._')}"
        tag = f"snap-{uuid.uuid4().hex[:8]}"  # two snapshots of one name must not collide
        with _errors(f"snapshot of {provider_id[:12]}"):
            container.commit(repository=repository, tag=tag, changes=changes,
                             message=f"Orbis snapshot {name}")  # fmt: skip
        return f"docker://{repository}:{tag}"

    def delete_image(self, url: str) -> None:
        scheme, _, name = url.partition("://")
        if scheme not in ("docker", "podman", "local") or not name:
            raise ProviderError(f"local: {url!r} is not a local image (docker://name)")
        with _errors(f"delete image {name}"):
            try:
                image = self.client.images.get(name)
            except docker.errors.ImageNotFound:
                return
            if SNAPSHOT_LABEL not in (image.labels or {}):
                raise ProviderError(f"local: image {name} was not made by an Orbis snapshot")
            with suppress(docker.errors.ImageNotFound):
                self.client.images.remove(name)

    # -- helpers ----------------------------------------------------------------------------

    def _labels(self, infrastructure_id: str) -> dict[str, str]:
        labels = {LABEL_INFRASTRUCTURE: infrastructure_id}
        if self.installation:
            labels[LABEL_INSTALLATION] = self.installation
        return labels

    def _owner_filter(self) -> str:
        if self.installation:
            return f"{LABEL_INSTALLATION}={self.installation}"
        return LABEL_INFRASTRUCTURE

    def _site_label(self) -> str | None:
        """The site label of the machines this provider makes (None: the server's own)."""
        return None

    def _mine(self, labels: dict[str, str]) -> bool:
        """Made by this installation (another Orbis on the same engine keeps its own)."""
        if not labels.get(LABEL_INFRASTRUCTURE):  # blank in snapshot images (see snapshot)
            return False
        return not self.installation or labels.get(LABEL_INSTALLATION) == self.installation

    @staticmethod
    def _infra_label(infrastructure_id: str) -> str:
        return f"{LABEL_INFRASTRUCTURE}={infrastructure_id}"

    def _find(self, infrastructure_id: str, node: str) -> Container | None:
        filters = {"label": [self._infra_label(infrastructure_id), f"{LABEL_NODE}={node}"]}
        with _errors(f"find node {node}"):
            found = self.client.containers.list(all=True, filters=filters)
        wanted = {LABEL_INFRASTRUCTURE: infrastructure_id, LABEL_NODE: node}
        # Re-check: engines differ on whether repeated label filters are AND-ed.
        mine = [c for c in found if all(c.labels.get(k) == v for k, v in wanted.items())
                and not c.labels.get(LABEL_RUNNER)]  # fmt: skip
        return mine[0] if mine else None

    def _get(self, provider_id: str) -> Container | None:
        with _errors(f"inspect {provider_id[:12]}"):
            try:
                return self.client.containers.get(provider_id)
            except docker.errors.NotFound:
                return None

    def _machine(self, container: Container, warnings: tuple[str, ...] = ()) -> Machine:
        """The container as a Machine. Its private address is reachable from this host, so a
        public node's public address is that same address."""
        labels = container.labels
        infra = labels.get(LABEL_INFRASTRUCTURE)
        ip = self._ip(container, network_name(infra) if infra else None)
        vm_id = labels.get(LABEL_VM_ID)
        return Machine(
            provider_id=container.id or "",
            state=_STATES.get(container.status, NodeState.UNKNOWN),
            private_ip=ip,
            public_ip=ip if labels.get(LABEL_PUBLIC) == "true" else None,
            ssh_user="root",
            infrastructure_id=infra,
            vm_id=int(vm_id) if vm_id and vm_id.isdigit() else None,
            warnings=warnings,
        )

    @staticmethod
    def _ip(container: Container, network: str | None) -> str | None:
        """The container's address on `network`, else its first address."""
        networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
        preferred = networks.get(network) if network else None
        for net in [preferred, *networks.values()]:
            if net and net.get("IPAddress"):
                return str(net["IPAddress"])
        return None


def _owner(spec: NodeSpec) -> dict[str, str]:
    """The owner mark label of what a launch makes (none when the engine gave no mark)."""
    return {LABEL_OWNER: spec.owner_mark} if spec.owner_mark else {}


def _remove_container(api: docker.APIClient, container_id: str) -> None:
    with suppress(docker.errors.NotFound):
        api.remove_container(container_id, force=True, v=True)


def _ssh_key_tar(public_key: str) -> bytes:
    """/root/.ssh (0700) and /root/.ssh/authorized_keys (0600), owned by root, as a tar."""
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        ssh_dir = tarfile.TarInfo("root/.ssh")
        ssh_dir.type, ssh_dir.mode, ssh_dir.mtime = tarfile.DIRTYPE, 0o700, now
        tar.addfile(ssh_dir)
        data = (public_key.strip() + "\n").encode() if public_key.strip() else b""
        keys = tarfile.TarInfo("root/.ssh/authorized_keys")
        keys.size, keys.mode, keys.mtime = len(data), 0o600, now
        tar.addfile(keys, io.BytesIO(data))
    return buf.getvalue()
