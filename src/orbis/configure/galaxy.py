"""Ansible Galaxy roles and collections a template asks for, installed before configuration.

They go into the infrastructure's runner folder (on ANSIBLE_ROLES_PATH / ANSIBLE_COLLECTIONS_PATH
of its runs), once: ansible-galaxy skips what is already there. ansible-galaxy runs in the
infrastructure's runner (a role's plugins are the template author's code), and the names come
after `--`: a name is never read as an option. Roles shipped with Orbis need no download; only
what a template names is fetched. What cannot be installed is reported (the rest is still
installed), never a crash.

A runner on the service's machine (its container, or the host opt-in) stands where the service
stands on the network, so ansible-galaxy's every connection goes through a proxy that applies
the address rule of server-side fetches (net/proxy.py): the names, Galaxy's download links and
their redirects, and the URLs of a role's dependencies alike. What all connections of one
install bring back is capped (ORBIS_GALAXY_MAX_BYTES, default 256 MiB). A front-end node
runner fetches from the user's own machine and needs no proxy.
"""

from __future__ import annotations

import asyncio
import os
import re
from urllib.parse import urlsplit

from orbis.configure.workfiles import WorkFileError, make_folder
from orbis.net.addresses import allow_list_from_env
from orbis.net.proxy import GuardedProxy, relayed
from orbis.runner.base import Runner
from orbis.runner.quota import run_within_quota

MAX_BYTES_SETTING = "ORBIS_GALAXY_MAX_BYTES"
MAX_BYTES = 256 * 2**20
PROXY_SOCKET = ".galaxy-proxy.sock"  # in the runner folder, which the runner mounts
SERVER = "https://galaxy.ansible.com/"  # where ansible-galaxy looks names up (its default)
RESOLVE_TIMEOUT = 5.0  # seconds to learn whether the server's name resolves from here
_NAME = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")  # namespace.name: looked up on the server


class GalaxyError(Exception):
    """A role or collection could not be installed; the message is ansible-galaxy's."""


def commands(folder: str, roles: list[str], collections: list[str]) -> list[list[str]]:
    """The ansible-galaxy command lines installing `roles` and `collections` into `folder`."""
    jobs = []
    if roles:
        jobs.append(["ansible-galaxy", "role", "install", "--ignore-errors", "-p",
                     f"{folder}/roles", "--", *sorted(set(roles))])  # fmt: skip
    if collections:
        jobs.append(["ansible-galaxy", "collection", "install", "--ignore-errors", "-p",
                     f"{folder}/collections", "--", *sorted(set(collections))])  # fmt: skip
    return jobs


def from_server(spec: str) -> bool:
    """Whether a role or collection is a name ansible-galaxy looks up on the Galaxy server
    ("namespace.name", with a version after a comma or a comparison), not a URL or archive."""
    name = re.split(r"[,:<>=!]", spec, maxsplit=1)[0].strip()
    return bool(_NAME.fullmatch(name)) and not name.endswith((".gz", ".tgz", ".tar", ".zip"))


async def resolves(url: str, timeout: float = RESOLVE_TIMEOUT) -> bool:
    """Whether the host of `url` has an address, asked the way the proxy will ask."""
    host = urlsplit(url).hostname or ""
    try:
        await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(host, 443), timeout)
    except (OSError, TimeoutError):
        return False
    return True


async def install(runner: Runner, roles: list[str], collections: list[str],
                  timeout: float = 600, server: str = SERVER) -> str:  # fmt: skip
    """Install what is missing; return ansible-galaxy's output, or raise GalaxyError.

    On the service's machine, names to look up on the Galaxy server are not handed to
    ansible-galaxy when the server's name does not resolve here (no network, say): the proxy
    would answer each of its requests "Bad Gateway", which ansible-galaxy retries with growing
    delays, ~14 s per install before it gives up. The rest (archives, URLs) is installed."""
    for folder in ("roles", "collections"):  # a planted link would send the install elsewhere
        try:
            make_folder(runner.workspace / folder)
        except WorkFileError as exc:
            raise GalaxyError(str(exc)) from None
    if not runner.on_service_host:
        return await _install(runner, roles, collections, timeout, None)
    unreachable: list[str] = []
    if any(from_server(s) for s in [*roles, *collections]) and not await resolves(server):
        unreachable = [s for s in [*roles, *collections] if from_server(s)]
        roles = [r for r in roles if not from_server(r)]
        collections = [c for c in collections if not from_server(c)]
    output = ""
    if roles or collections:
        limit = int(os.environ.get(MAX_BYTES_SETTING) or MAX_BYTES)
        async with GuardedProxy(runner.workspace, PROXY_SOCKET, allow_list_from_env(), limit,
                                MAX_BYTES_SETTING) as proxy:  # fmt: skip
            output = await _install(runner, roles, collections, timeout, proxy)
    if unreachable:
        raise GalaxyError(f"not installed: {', '.join(unreachable)}: the Galaxy server "
                          f"{urlsplit(server).hostname} cannot be reached from this server "
                          "(its name does not resolve)")  # fmt: skip
    return output


async def _install(runner: Runner, roles: list[str], collections: list[str], timeout: float,
                   proxy: GuardedProxy | None) -> str:  # fmt: skip
    output = []
    env = {"ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": f"{runner.paths.tmp}/ansible-local"}
    socket_path = str(runner.paths.workspace / PROXY_SOCKET)
    for number, argv in enumerate(commands(str(runner.paths.workspace), roles, collections)):
        command = relayed(argv, socket_path) if proxy is not None else argv
        code, text, over_quota = await run_within_quota(runner, command, env, timeout=timeout,
                                                        tag=f"galaxy-{number}")  # fmt: skip
        output.append(text)
        missed = [line.strip() for line in text.splitlines() if "NOT installed" in line]
        refused = list(dict.fromkeys(proxy.refusals)) if proxy is not None else []
        refused += [over_quota] if over_quota else []
        if code != 0 or missed or refused:
            tail = "\n".join(refused + (missed or text.strip().splitlines()[-5:]))
            raise GalaxyError(f"ansible-galaxy {argv[1]} install failed: {tail}")
    return "".join(output)
