"""Reading a file or a command's output from inside a container through the engine's exec API,
for tests that look inside nodes.

The exec API sometimes hands back no output at all for a short command that did print, when
the machine is loaded (the stream is attached after the process has written and exited; seen
with podman 4.3 and reported for Docker: docker/docker-py#2042, moby/moby#27289). A read that
comes back empty with exit code 0 is therefore asked again a few times; a file that really is
empty stays empty, so a test expecting content still fails."""

from __future__ import annotations

import time
from collections.abc import Callable

from docker.models.containers import Container

ATTEMPTS = 4


def read_retrying(run: Callable[[], tuple[int, str]], attempts: int = ATTEMPTS) -> tuple[int, str]:
    """`run()` (exit code, output) again while it succeeds with no output, at most `attempts`
    times in all; the last answer."""
    code, output = run()
    for _ in range(attempts - 1):
        if code != 0 or output:
            break
        time.sleep(0.2)
        code, output = run()
    return code, output


def container_read(container: Container, argv: list[str]) -> tuple[int, str]:
    """`argv` in a docker SDK container (a read: asked again while it prints nothing)."""

    def run() -> tuple[int, str]:
        result = container.exec_run(argv)
        return int(result.exit_code or 0), result.output.decode(errors="replace")

    return read_retrying(run)
