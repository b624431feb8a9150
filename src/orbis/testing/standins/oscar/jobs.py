"""Running one job of a stand-in OSCAR service: a container from the service's image with the
input file at $INPUT_FILE_PATH, the script, and $TMP_OUTPUT_DIR collected afterwards.

The container has no network, is labelled `orbis.oscar-standin=<cluster>` and is removed once
its output is read. Files go in and out with the Engine API's archive calls (no bind mounts).
"""

from __future__ import annotations

import io
import tarfile
import time
from dataclasses import dataclass, field

LABEL = "orbis.oscar-standin"
INPUT_DIR = "/tmp/input"
OUTPUT_DIR = "/tmp/output"
SCRIPT = "/oscar/script.sh"
MAX_OUTPUT = 64 * 2**20


@dataclass
class JobResult:
    exit_code: int
    stdout: bytes
    outputs: dict[str, bytes] = field(default_factory=dict)  # file name -> content


def _tar(files: dict[str, tuple[bytes, int]], dirs: list[str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in dirs:
            info = tarfile.TarInfo(name.lstrip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o777, int(time.time())
            tar.addfile(info)
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def run_job(cluster_id: str, image: str, script: str, file_name: str, data: bytes,
            environment: dict[str, str], timeout: float = 120.0) -> JobResult:  # fmt: skip
    """Run the script on one input file in a fresh container; what it printed and wrote."""
    import docker  # the tests' engine (DOCKER_HOST)

    client = docker.from_env(timeout=int(timeout) + 30)
    input_path = f"{INPUT_DIR}/{file_name}"
    env = {**environment, "INPUT_FILE_PATH": input_path, "TMP_OUTPUT_DIR": OUTPUT_DIR}
    container = client.containers.create(
        image, entrypoint=["/bin/sh"], command=[SCRIPT], environment=env,
        labels={LABEL: cluster_id}, network_disabled=True, detach=True,
    )  # fmt: skip
    try:
        archive = _tar({SCRIPT: (script.encode(), 0o755), input_path: (data, 0o644)},
                       ["/oscar", INPUT_DIR, OUTPUT_DIR])  # fmt: skip
        container.put_archive("/", archive)
        container.start()
        status = container.wait(timeout=timeout)
        stdout = container.logs(stdout=True, stderr=False)
        outputs: dict[str, bytes] = {}
        stream, _ = container.get_archive(OUTPUT_DIR)
        raw = b"".join(stream)
        if len(raw) <= MAX_OUTPUT:
            with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
                for member in tar.getmembers():
                    if member.isfile():
                        handle = tar.extractfile(member)
                        if handle is not None:
                            outputs[member.name.rsplit("/", 1)[-1]] = handle.read()
        return JobResult(int(status.get("StatusCode", 1)), stdout, outputs)
    finally:
        container.remove(force=True)
        client.close()
