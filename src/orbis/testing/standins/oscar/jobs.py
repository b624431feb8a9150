"""Running one job of a stand-in OSCAR service on one input file: the script with the input at
$INPUT_FILE_PATH, and what it wrote to $TMP_OUTPUT_DIR collected afterwards. Two ways:

- `run_job`: a container from the service's image (the stand-in on the test host). The
  container has no network, is labelled `orbis.oscar-standin=<cluster>` and is removed once its
  output is read. Files go in and out with the Engine API's archive calls (no bind mounts).
- `run_process`: the script as a process of the machine the stand-in runs on, in a fresh work
  folder removed afterwards (the stand-in inside a local back-end OSCAR node, docs/functions.md:
  the node has no container engine and must not get the host's; the image is not used).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
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


# (cluster id, image, script, input file name, input, environment) -> result
Runner = Callable[[str, str, str, str, bytes, dict[str, str]], JobResult]


def run_process(cluster_id: str, image: str, script: str, file_name: str, data: bytes,
                environment: dict[str, str], timeout: float = 120.0) -> JobResult:  # fmt: skip
    """Run the script on one input file as a process in a fresh work folder; what it printed
    and wrote. `image` is not used: the machine's own system is the job's."""
    work = tempfile.mkdtemp(prefix="oscar-job-")
    try:
        inputs, outputs = os.path.join(work, "input"), os.path.join(work, "output")
        os.makedirs(inputs)
        os.makedirs(outputs)
        input_path = os.path.join(inputs, os.path.basename(file_name) or "input")
        with open(input_path, "wb") as handle:
            handle.write(data)
        script_path = os.path.join(work, "script.sh")
        with open(script_path, "w") as handle:
            handle.write(script)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, **environment,
               "INPUT_FILE_PATH": input_path, "TMP_OUTPUT_DIR": outputs}  # fmt: skip
        try:
            done = subprocess.run(["/bin/sh", script_path], cwd=work, env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, timeout=timeout,
                                  check=False)  # fmt: skip
            code, stdout = done.returncode, done.stdout
        except subprocess.TimeoutExpired as exc:
            code, stdout = 124, bytes(exc.stdout or b"")
        found: dict[str, bytes] = {}
        total = 0
        for name in sorted(os.listdir(outputs)):
            path = os.path.join(outputs, name)
            if os.path.isfile(path) and not os.path.islink(path):
                total += os.path.getsize(path)
                if total > MAX_OUTPUT:
                    break
                with open(path, "rb") as handle:
                    found[name] = handle.read()
        return JobResult(code, stdout, found)
    finally:
        shutil.rmtree(work, ignore_errors=True)
