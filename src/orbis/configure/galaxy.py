"""Ansible Galaxy roles and collections a template asks for, installed before configuration.

They go into the infrastructure's runner folder (on ANSIBLE_ROLES_PATH / ANSIBLE_COLLECTIONS_PATH
of its runs), once: ansible-galaxy skips what is already there. ansible-galaxy runs in the
infrastructure's runner (a role's plugins are the template author's code), and the names come
after `--`: a name is never read as an option. Roles shipped with Orbis need no download; only
what a template names is fetched. What cannot be installed is reported (the rest is still
installed), never a crash.
"""

from __future__ import annotations

from orbis.configure.workfiles import WorkFileError, make_folder
from orbis.runner.base import Runner


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


async def install(runner: Runner, roles: list[str], collections: list[str],
                  timeout: float = 600) -> str:  # fmt: skip
    """Install what is missing; return ansible-galaxy's output, or raise GalaxyError."""
    for folder in ("roles", "collections"):  # a planted link would send the install elsewhere
        try:
            make_folder(runner.workspace / folder)
        except WorkFileError as exc:
            raise GalaxyError(str(exc)) from None
    output = []
    env = {"ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": f"{runner.paths.tmp}/ansible-local"}
    for number, argv in enumerate(commands(str(runner.paths.workspace), roles, collections)):
        code, text = await runner.run(argv, env, timeout=timeout, tag=f"galaxy-{number}")
        output.append(text)
        missed = [line.strip() for line in text.splitlines() if "NOT installed" in line]
        if code != 0 or missed:
            tail = "\n".join(missed or text.strip().splitlines()[-5:])
            raise GalaxyError(f"ansible-galaxy {argv[1]} install failed: {tail}")
    return "".join(output)
