"""Naming the nodes before their recipes run, as IM's contextualization does: each node gets
its host name, and an /etc/hosts block listing every node of the infrastructure, so recipes
(a SLURM worker looking for its server, say) reach each other by name.

One shell command per node over SSH rather than an Ansible play: it costs a connection
(~0.1 s) instead of an ansible-playbook start (~2.5 s), on every configuration.
"""

from __future__ import annotations

import shlex

BEGIN = "# BEGIN Orbis: the nodes of this infrastructure"
END = "# END Orbis"


def block(entries: list[tuple[str, str, str]]) -> list[str]:
    """The /etc/hosts lines for (address, fqdn, host name) entries."""
    return [BEGIN, *(f"{ip} {fqdn} {host}" for ip, fqdn, host in entries), END]


def command(host: str, fqdn: str, entries: list[tuple[str, str, str]], *, sudo: bool) -> str:
    """A shell command that names the node and rewrites our /etc/hosts block (idempotent).
    /etc/hosts and /etc/hostname are rewritten in place: in a container they are bind mounts,
    which a rename would fail on. Setting the kernel's host name may be refused in a container
    (which was created with it already); that is not an error."""
    lines = " ".join(shlex.quote(line) for line in block(entries))
    script = "\n".join([
        "set -e",
        "tmp=$(mktemp)",
        f"awk -v b={shlex.quote(BEGIN)} -v e={shlex.quote(END)} "
        "'$0==b{skip=1} !skip{print} $0==e{skip=0}' /etc/hosts > \"$tmp\"",
        f"printf '%s\\n' {lines} >> \"$tmp\"",
        "cat \"$tmp\" > /etc/hosts",
        "rm -f \"$tmp\"",
        f"echo {shlex.quote(host)} > /etc/hostname 2>/dev/null || true",
        f"hostname {shlex.quote(host)} 2>/dev/null || true",
        f"echo {shlex.quote(fqdn)}",
    ])  # fmt: skip
    run = f"sh -c {shlex.quote(script)}"
    return f"sudo -n {run}" if sudo else run
