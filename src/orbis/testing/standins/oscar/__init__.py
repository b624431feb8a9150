"""A stand-in OSCAR cluster for tests: OSCAR's REST API (FastAPI, strict about the FDL and its
auth), a MinIO that is moto's S3 server, and jobs that really run in containers.

`oscar_cluster(cluster_id)` starts one on 127.0.0.1 (its own moto server as its MinIO) and
yields the `Cluster` (its `url`, `user`, `password`, `minio`, `services`, `jobs`, `requests`);
ORBIS_FETCH_ALLOW lists it while it serves. `fail_status` makes every `/system` request answer
that status (a broken or refusing OSCAR). Jobs run through the Engine API of DOCKER_HOST.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from orbis.testing.standins import allowed
from orbis.testing.standins.oscar.cluster import KNOWN_MINIO, Cluster
from orbis.testing.standins.oscar.jobs import LABEL

__all__ = ["KNOWN_MINIO", "LABEL", "Cluster", "oscar_cluster"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def oscar_cluster(cluster_id: str = "oscar-a", *, max_jobs: int = 2, password: str | None = None,
                  tokens: tuple[str, ...] = ()) -> Iterator[Cluster]:  # fmt: skip
    import uvicorn

    from orbis.testing.standins.moto import moto_server
    from orbis.testing.standins.oscar.app import build_app

    with ExitStack() as stack:
        minio_url = stack.enter_context(moto_server())
        stack.enter_context(allowed(minio_url.removeprefix("http://")))
        cluster = Cluster(cluster_id, minio_url, max_jobs=max_jobs, password=password,
                          tokens=tokens)  # fmt: skip
        stack.callback(cluster.close)
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(build_app(cluster), host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the OSCAR stand-in did not start")
            time.sleep(0.05)
        cluster.url = f"http://127.0.0.1:{port}"
        stack.enter_context(allowed(f"127.0.0.1:{port}"))
        try:
            yield cluster
        finally:
            server.should_exit = True
            thread.join(timeout=10)
