"""Where each function goes and how to reach it (pure, but for nothing: no I/O).

A function hosted on an OSCAR node of the template goes there once that node's machine is
configured; endpoint `https://<dns_host>` (a `dns_host` written with a scheme is used as it
is), else `http://<public address>` (the machine's own address: called without the address
rule that guards endpoints users name; on the local back-end the OSCAR stand-in answers
there, configure/oscar_local.py); user `oscar` with the node's `password`; certificates not
verified, as IM's recipe does. An unhosted function goes to the auth line its placement's
`cloud_id` names, else by its image: one in ECR to the first Lambda (or EC2) line, an
`oscar://HOST/…` one to the first OSCAR line whose host is HOST (as IM's OSCAR connector takes
it only on that cloud; with a `cloud_id`, that line must be at HOST), any other to the first
OSCAR line. Lambda lines: `type = Lambda` (or `EC2`), `username` = access key,
`password` = secret key, `role` = the execution role's ARN.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from orbis.model.infrastructure import ServerlessFunction, Template
from orbis.model.states import NodeState
from orbis.providers.aws_lambda import LambdaTarget, ecr_region
from orbis.providers.oscar import FdlError, OscarTarget
from orbis.store.schema import NodeRow

OSCAR_TYPES = {"oscar"}
LAMBDA_TYPES = {"lambda", "ec2"}
HOSTED_PREFIX = "node:"
DEFAULT_OSCAR_PASSWORD = "oscar123"  # tosca.nodes.indigo.OSCAR's default
DETACHED_NODE = "detached"  # service/adoption.py's mark of a machine that is not the owner's


class Waiting(Exception):
    """The function's place is not ready yet (its OSCAR node is still being configured)."""


@dataclass(frozen=True)
class Place:
    backend: str  # "oscar" or "lambda"
    site: str  # auth line id, or "node:<OSCAR node>"
    oscar: OscarTarget | None = None
    aws: LambdaTarget | None = None


def lines_of(lines: list[dict[str, str]], kinds: set[str]) -> list[dict[str, str]]:
    return [x for x in lines if (x.get("type") or "").lower() in kinds]


def oscar_target(line: Mapping[str, str]) -> OscarTarget:
    host = (line.get("host") or "").strip()
    endpoint = host if "://" in host else f"https://{host}"
    verify = str(line.get("verify", line.get("ssl_verify", "true"))).lower() not in (
        "false", "0", "no")  # fmt: skip
    return OscarTarget(endpoint=endpoint.rstrip("/"), user=line.get("username"),
                       password=line.get("password"), token=line.get("token"),
                       verify=verify, cluster_id=line.get("id") or "oscar")  # fmt: skip


def named_cluster(image: str | None) -> str:
    """The host an `oscar://HOST/image` names (lower case, no port), else ''."""
    parts = urlsplit(image or "")
    return (parts.hostname or "") if parts.scheme.lower() == "oscar" else ""


def line_host(line: Mapping[str, str]) -> str:
    """The host name of an auth line's `host` (`https://h:8443/` or `h` -> `h`), as IM's
    cloud `server` is."""
    host = (line.get("host") or "").strip()
    return urlsplit(host if "://" in host else f"//{host}").hostname or ""


def lambda_target(line: Mapping[str, str]) -> LambdaTarget:
    return LambdaTarget(access_key=line.get("username") or "",
                        secret_key=line.get("password") or "", role=line.get("role") or "",
                        session_token=line.get("token"))  # fmt: skip


def hosted_target(template: Template, host: str, nodes: list[NodeRow]) -> OscarTarget:
    """Where the OSCAR node `host` answers; Waiting until its machine is configured."""
    component = template.components.get(host)
    if component is None:
        raise FdlError(f"host '{host}' is not a software node of the template")
    machines = sorted((n for n in nodes if n.name == component.host and not n.deleted),
                      key=lambda n: n.vm_id)  # fmt: skip
    if machines and machines[0].adoption == DETACHED_NODE:  # imported, another's: never called
        raise FdlError(f"OSCAR node {host}: its machine {component.host} is detached")
    if not machines or machines[0].state != NodeState.CONFIGURED:
        if machines and machines[0].state == NodeState.FAILED:
            raise FdlError(f"OSCAR node {host}: its machine {component.host} failed")
        raise Waiting(f"waiting for {component.host} (OSCAR node {host}) to be configured")
    dns = str(component.properties.get("dns_host") or "").strip().strip("'\"")
    if dns:
        endpoint = dns if "://" in dns else f"https://{dns}"
    else:
        address = machines[0].public_ip or machines[0].private_ip
        if not address:
            raise FdlError(f"OSCAR node {host} has no address")
        endpoint = f"http://{_host_part(address)}"
    return OscarTarget(endpoint=endpoint.rstrip("/"), user="oscar",
                       password=hosted_password(template, host), verify=False,
                       cluster_id=host, own_node=not dns)  # fmt: skip


def _host_part(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def node_endpoint(template: Template, host: str, endpoint: str, nodes: list[NodeRow]) -> bool:
    """Whether `endpoint` is the address of a live machine of the OSCAR node `host` (made by
    Orbis, so called without the address rule that guards what users name)."""
    component = template.components.get(host)
    if component is None:
        return False
    return any(endpoint.rstrip("/") == f"http://{_host_part(address)}"
               for n in nodes if n.name == component.host and not n.deleted
               and n.adoption != DETACHED_NODE
               for address in (n.public_ip, n.private_ip) if address)  # fmt: skip


def hosted_password(template: Template, host: str) -> str:
    component = template.components.get(host)
    value = component.properties.get("password") if component else None
    return str(value or DEFAULT_OSCAR_PASSWORD)


def place(fn: ServerlessFunction, template: Template, nodes: list[NodeRow],
          lines: list[dict[str, str]]) -> Place:  # fmt: skip
    if fn.host:
        return Place("oscar", f"{HOSTED_PREFIX}{fn.host}",
                     oscar=hosted_target(template, fn.host, nodes))  # fmt: skip
    oscars = lines_of(lines, OSCAR_TYPES)
    lambdas = lines_of(lines, LAMBDA_TYPES)
    named = named_cluster(fn.image)
    if named:  # IM's OSCAR connector takes an oscar://HOST/ image only on the cloud at HOST
        oscars = [x for x in oscars if line_host(x) == named]
        if not oscars and not fn.cloud_id:
            raise FdlError(f"function '{fn.name}': image '{fn.image}' names the OSCAR cluster "
                           f"at {named}, and no auth line of type OSCAR has host {named}")
    if fn.cloud_id:
        line = next((x for x in oscars + lambdas if x.get("id") == fn.cloud_id), None)
        if line is None:
            at = f" at host {named} (the cluster its image names)" if named else ""
            raise FdlError(f"function '{fn.name}': no OSCAR or Lambda auth line with id = "
                           f"{fn.cloud_id}{at}")  # fmt: skip
    elif ecr_region(fn.image) and lambdas:
        line = lambdas[0]
    elif oscars:
        line = oscars[0]
    else:
        raise FdlError(f"function '{fn.name}' is on no OSCAR node and the auth data has no "
                       "line of type OSCAR" + (" or Lambda" if ecr_region(fn.image) else ""))
    site = line.get("id") or (line.get("type") or "").lower()
    if line in lambdas:
        return Place("lambda", site, aws=lambda_target(line))
    if not line.get("host"):
        raise FdlError(f"OSCAR auth line '{site}' has no host")
    return Place("oscar", site, oscar=oscar_target(line))


def site_place(site: str, endpoint: str, template: Template, lines: list[dict[str, str]],
               nodes: list[NodeRow] | None = None) -> Place:  # fmt: skip
    """How to reach again what was made at `site` (to update, invoke or delete it); `nodes`,
    the infrastructure's machines, tell a hosted OSCAR at its machine's own address."""
    if site.startswith(HOSTED_PREFIX):
        host = site.removeprefix(HOSTED_PREFIX)
        return Place("oscar", site, oscar=OscarTarget(
            endpoint=endpoint, user="oscar", password=hosted_password(template, host),
            verify=False, cluster_id=host,
            own_node=node_endpoint(template, host, endpoint, nodes or [])))  # fmt: skip
    for line in lines_of(lines, OSCAR_TYPES | LAMBDA_TYPES):
        if (line.get("id") or (line.get("type") or "").lower()) == site:
            if (line.get("type") or "").lower() in LAMBDA_TYPES:
                return Place("lambda", site, aws=lambda_target(line))
            return Place("oscar", site, oscar=oscar_target(line))
    raise FdlError(f"no OSCAR or Lambda auth line with id = {site} any more")


def clusters_of(template: Template, nodes: list[NodeRow],
                lines: list[dict[str, str]]) -> dict[str, OscarTarget]:  # fmt: skip
    """The OSCAR clusters replicas may name: the user's OSCAR lines (by id) and the OSCAR nodes
    of the template that are up (by node name)."""
    found = {x.get("id") or "oscar": oscar_target(x)
             for x in lines_of(lines, OSCAR_TYPES) if x.get("host")}  # fmt: skip
    for fn in template.functions.values():
        if fn.host and fn.host not in found:
            with contextlib.suppress(Waiting, FdlError):
                found[fn.host] = hosted_target(template, fn.host, nodes)
    return found
