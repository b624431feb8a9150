"""A simulated cloud, for scale and fault tests (never the default).

Machines live in a small SQLite file under ORBIS_HOME, outside the service process — like a real
cloud, they survive a crash of the service. Launching takes `latency` seconds and fails with
probability `failure_rate` (as a Transient error half of the time, so retries get exercised);
nodes need no SSH and their configuration is simulated by the engine (`simulated = True`).
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orbis.model.infrastructure import Volume
from orbis.model.states import NodeState
from orbis.providers.base import (
    Image,
    Machine,
    NodeSpec,
    NotFound,
    Provider,
    ProviderError,
    Transient,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS machines (
  id TEXT PRIMARY KEY, infrastructure TEXT, vm_id INTEGER, node TEXT, state TEXT, ip TEXT,
  public INTEGER);
CREATE TABLE IF NOT EXISTS networks (infrastructure TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS images (id TEXT PRIMARY KEY, name TEXT, machine TEXT, disk INTEGER);
CREATE TABLE IF NOT EXISTS disks (machine TEXT, disk INTEGER, size INTEGER,
  PRIMARY KEY (machine, disk));
"""


class SimProvider(Provider):
    name = "sim"
    simulated = True

    def __init__(self, path: Path, latency: float = 0.05, failure_rate: float = 0.0,
                 config_seconds: float = 0.05, transient_failures: int = 0) -> None:  # fmt: skip
        self.path = path
        self.transient_failures = transient_failures  # the first N launches time out
        self.latency = latency
        self.failure_rate = failure_rate
        self.config_seconds = config_seconds
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            for attempt in range(50):
                # two connections switching a new file to WAL at once can deadlock, and SQLite
                # then fails one at once instead of waiting: try again shortly
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or attempt == 49:
                        raise
                    time.sleep(0.02)
            self._local.conn = conn
        return conn

    def prepare(self, infrastructure_id: str) -> None:
        self._db().execute("INSERT OR IGNORE INTO networks VALUES (?)", (infrastructure_id,))

    def launch(self, spec: NodeSpec) -> Machine:
        node = f"{spec.name}.{spec.vm_id}"
        row = (
            self._db()
            .execute(
                "SELECT id FROM machines WHERE infrastructure = ? AND node = ?",
                (spec.infrastructure_id, node),
            )
            .fetchone()
        )
        if row:
            return self.inspect(row[0])
        time.sleep(self.latency)
        if self.transient_failures > 0:
            self.transient_failures -= 1
            raise Transient("sim: the API timed out")
        if random.random() < self.failure_rate:
            if random.random() < 0.5:
                raise Transient("sim: the API timed out")
            raise ProviderError("sim: no capacity left for this flavor")
        if spec.image and spec.image.startswith("missing"):
            raise NotFound(f"sim: image {spec.image} not found")
        if spec.image and spec.image.startswith("sim://") and spec.image not in {
            i.url for i in self.images()
        }:  # a snapshot of this cloud that was deleted, or another cloud's
            raise NotFound(f"sim: image {spec.image} not found")
        machine_id = uuid.uuid4().hex
        ip = f"192.0.2.{random.randrange(1, 255)}"  # TEST-NET-1: never routed anywhere
        self._db().execute(
            "INSERT INTO machines VALUES (?, ?, ?, ?, 'running', ?, ?)",
            (machine_id, spec.infrastructure_id, spec.vm_id, node, ip, int(spec.public)),
        )
        return self.inspect(machine_id)

    def inspect(self, provider_id: str) -> Machine:
        row = (
            self._db()
            .execute(
                "SELECT infrastructure, vm_id, state, ip, public FROM machines WHERE id = ?",
                (provider_id,),
            )
            .fetchone()
        )
        if row is None:
            return Machine(provider_id=provider_id, state=NodeState.OFF)
        infra, vm_id, state, ip, public = row
        return Machine(
            provider_id=provider_id, state=NodeState(state), private_ip=ip,
            public_ip=ip if public else None, infrastructure_id=infra, vm_id=vm_id,
        )  # fmt: skip

    def destroy(self, provider_id: str) -> None:
        self._db().execute("DELETE FROM machines WHERE id = ?", (provider_id,))
        self._db().execute("DELETE FROM disks WHERE machine = ?", (provider_id,))

    def cleanup(self, infrastructure_id: str) -> None:
        db = self._db()
        db.execute("DELETE FROM machines WHERE infrastructure = ?", (infrastructure_id,))
        db.execute("DELETE FROM networks WHERE infrastructure = ?", (infrastructure_id,))

    def list_owned(self) -> list[Machine]:
        ids = [r[0] for r in self._db().execute("SELECT id FROM machines").fetchall()]
        return [self.inspect(i) for i in ids]

    def owned_infrastructures(self) -> set[str]:
        rows = self._db().execute("SELECT infrastructure FROM networks").fetchall()
        return {r[0] for r in rows} | super().owned_infrastructures()

    def _set_state(self, provider_id: str, state: str) -> None:
        done = self._db().execute("UPDATE machines SET state = ? WHERE id = ?",
                                  (state, provider_id))  # fmt: skip
        if done.rowcount == 0:
            raise NotFound(f"sim: no machine {provider_id}")

    def stop(self, provider_id: str) -> None:
        self._set_state(provider_id, "stopped")

    def start(self, provider_id: str) -> None:
        self._set_state(provider_id, "running")

    def reboot(self, provider_id: str) -> None:
        self._set_state(provider_id, "running")

    def alter(self, provider_id: str, num_cpus: float | None, mem_size: int | None) -> None:
        self.inspect(provider_id)

    def add_disk(self, provider_id: str, volume: Volume) -> str:
        if self.inspect(provider_id).state == NodeState.OFF:
            raise NotFound(f"sim: no machine {provider_id}")
        try:
            self._db().execute("INSERT INTO disks VALUES (?, ?, ?)",
                               (provider_id, volume.index, volume.size or 0))  # fmt: skip
        except sqlite3.IntegrityError:
            raise ProviderError(f"sim: machine {provider_id} already has disk "
                                f"{volume.index}") from None  # fmt: skip
        return f"/dev/vd{chr(ord('a') + volume.index)}"

    def disks(self, provider_id: str) -> dict[int, int]:
        """Disk number -> size of the disks added to a machine (for tests)."""
        rows = self._db().execute("SELECT disk, size FROM disks WHERE machine = ?",
                                  (provider_id,)).fetchall()  # fmt: skip
        return dict(rows)

    # images live in the cloud's own file, like machines: they outlive the infrastructure
    def snapshot(self, provider_id: str, disk: int, name: str) -> str:
        if self.inspect(provider_id).state == NodeState.OFF:
            raise NotFound(f"sim: no machine {provider_id}")
        if disk != 0:
            raise NotFound(f"sim: machine {provider_id} has no disk {disk}")
        image_id = uuid.uuid4().hex[:12]
        self._db().execute("INSERT INTO images VALUES (?, ?, ?, ?)",
                           (image_id, name, provider_id, disk))  # fmt: skip
        return f"sim://{self.path.stem}/{image_id}"

    def delete_image(self, url: str) -> None:
        prefix = f"sim://{self.path.stem}/"
        if not url.startswith(prefix):
            raise ProviderError(f"sim: {url} is not an image of this cloud")
        self._db().execute("DELETE FROM images WHERE id = ?", (url.removeprefix(prefix),))

    def images(self) -> list[Image]:
        rows = self._db().execute("SELECT id, name FROM images ORDER BY rowid").fetchall()
        return [Image(id=i, name=n, url=f"sim://{self.path.stem}/{i}") for i, n in rows]


class SimSite(SimProvider):
    """The simulated cloud as a site of the site registry (tests plug it in as a cloud type):
    the auth line's `path` is its state file, so two lines are two clouds."""

    def __init__(self, auth: Mapping[str, str], *, options: Mapping[str, Any] | None = None):
        super().__init__(Path(auth["path"]), latency=float((options or {}).get("latency", 0.0)),
                         config_seconds=0.0)  # fmt: skip
