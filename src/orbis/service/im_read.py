"""IM's export (the `data` string of `GET /infrastructures/ID/data`) read into what an Orbis
import needs. Pure: no store, no cloud; every problem is an InvalidRequest naming the field.

IM's document, as its public behaviour shows it (docs/compatibility.md has the mapping):
a JSON object with `radl` (the infrastructure's RADL text), `extra_info` (`{"TOSCA": YAML}` for
an infrastructure made from TOSCA), `cont_out` (its contextualization log), `vm_id` (the next
VM number), `auth` (IM's owners, with their passwords: never read) and `vm_list`. Each VM is a
JSON string (objects are accepted too) with `id` (the provider's resource id), `im_id`, `state`,
`destroy`, `cloud` (a JSON string: the auth line `id` and `type`, `server`...), `info` (the VM's
RADL text: its system with addresses, state and credentials, and its networks), `cont_out` and
`error_msg`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from orbis.lang.errors import TemplateError
from orbis.lang.radl.ast import Document, Feature, Section
from orbis.lang.radl.outports import parse_outports
from orbis.lang.radl.parser import parse_document
from orbis.lang.radl.writer import render
from orbis.model.states import NodeState
from orbis.placement.sites import LOCAL_TYPES
from orbis.service.errors import InvalidRequest
from orbis.service.im_functions import function_record, is_function_cloud

PREFIX = "Error Importing Inf.: IM data"
IM_STATES = {s.value for s in NodeState}
# IM adds these to its stored RADL to tie private networks to a cloud; its own RADL output
# leaves them out, and so does an import
FAKE_SYSTEM = "F0000__FAKE_SYSTEM__"
# Keys IM writes (in one version or another) that an import reads or knowingly leaves out;
# anything else is named in the infrastructure's log as not carried over.
INFRA_KEYS = {"id", "vm_list", "auth", "radl", "extra_info", "cont_out", "vm_id", "vm_master",
              "private_networks", "system_counter", "deleted", "ansible_configured",
              "configured", "snapshots", "last_ganglia_update"}  # fmt: skip
# the node columns' sizes (store/schema.py NodeRow)
COLUMN_LIMITS = {"name": 255, "provider_id": 255, "site": 255, "private_ip": 64,
                 "public_ip": 64, "ssh_user": 64, "jump": 255}  # fmt: skip
VM_KEYS = {"id", "im_id", "creation_im_id", "state", "destroy", "cloud", "info",
           "requested_radl", "cont_out", "configured", "ctxt_pid", "ssh_connect_errors",
           "last_update", "creating", "deleting", "error_msg"}  # fmt: skip


@dataclass
class ImVm:
    """One VM of the export, as an Orbis node row (NodeRow's column names)."""

    vm_id: int
    name: str
    state: str
    provider_id: str | None
    site: str | None  # None: the server's own back-end
    private_ip: str | None = None
    public_ip: str | None = None
    ssh_user: str = "root"
    ssh_port: int | None = None
    jump: str | None = None
    log: str = ""
    error: str = ""
    deleted: bool = False
    private_key: str | None = field(default=None, repr=False)

    def check(self, where: str) -> None:
        """Values fit their columns (a database would refuse them past the end)."""
        for name, limit in COLUMN_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, str) and len(value) > limit:
                raise _fail(where, f"{name} is longer than {limit} characters")

    def row(self) -> dict[str, Any]:
        """The node's columns (the key stays out: it is the infrastructure's)."""
        desired = "stopped" if self.state == NodeState.STOPPED else "running"
        return {"vm_id": self.vm_id, "name": self.name, "state": self.state,
                "provider_id": self.provider_id, "site": self.site,
                "private_ip": self.private_ip, "public_ip": self.public_ip,
                "ssh_user": self.ssh_user, "ssh_port": self.ssh_port, "jump": self.jump,
                "log": self.log, "error": self.error, "deleted": self.deleted,
                "desired": "absent" if self.deleted else desired,
                "needs_config": False}  # fmt: skip


@dataclass
class ImInfrastructure:
    template: str
    template_format: str  # "tosca" or "radl"
    log: str
    next_vm_id: int
    vms: list[ImVm]
    notes: list[str]  # what was not carried over, for the infrastructure's log
    # unhosted functions (VMs on an OSCAR or Lambda connector), as function records
    functions: list[dict[str, Any]] = field(default_factory=list)

    def live(self) -> list[ImVm]:
        return [vm for vm in self.vms if not vm.deleted]


def is_im_export(data: Any) -> bool:
    """IM's form has `vm_list`; Orbis's own has `format`."""
    return isinstance(data, dict) and "vm_list" in data and "format" not in data


def _fail(where: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"{PREFIX}: {where}: {what}")


def _object(value: Any, where: str) -> dict[str, Any]:
    """An object, or a JSON string of one (IM nests its parts as JSON strings)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _fail(where, "is a string but not JSON") from None
        except RecursionError:
            raise _fail(where, "nests too deep") from None
    if not isinstance(value, dict):
        raise _fail(where, "must be an object (or a JSON string of one)")
    return value


def _text(data: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise _fail(f"{where}.{key}", "missing" if value is None else "must be a string")
    return value


def _whole(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(where, "must be a whole number >= 0")
    return value


def read_im_export(data: dict[str, Any]) -> ImInfrastructure:
    """The export → template, VMs and notes; InvalidRequest names the first bad field."""
    notes = [f"field '{k}' is not known to Orbis and was not carried over"
             for k in sorted(set(data) - INFRA_KEYS)]  # fmt: skip
    if data.get("auth"):
        notes.append("IM's owners (field 'auth') are not carried over: the importer owns it")
    template, template_format = _template(data)
    entries = data.get("vm_list")
    if not isinstance(entries, list):
        raise _fail("vm_list", "must be a list")
    vms: list[ImVm] = []
    functions: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        vm = _object(entry, f"vm_list[{i}]")
        cloud = _object(vm.get("cloud"), f"vm_list[{i}].cloud") if vm.get("cloud") else {}
        if is_function_cloud(str(cloud.get("type") or "")):
            functions.append(_function(vm, cloud, f"vm_list[{i}]"))
        else:
            vms.append(_vm(vm, f"vm_list[{i}]", notes))
    names = [f["name"] for f in functions]
    if len(set(names)) != len(names):
        raise _fail("vm_list", "two functions have the same system name")
    ids = [vm.vm_id for vm in vms]
    if len(set(ids)) != len(ids):
        raise _fail("vm_list", "two VMs have the same im_id")
    next_vm_id = max([*(i + 1 for i in ids), 0])
    if data.get("vm_id") is not None:
        next_vm_id = max(next_vm_id, _whole(data["vm_id"], "vm_id"))
    _set_jumps(vms)
    for i, found in enumerate(vms):
        found.check(f"vm_list[{i}]")
    return ImInfrastructure(template, template_format, _text(data, "cont_out", "data"),
                            next_vm_id, vms, notes, functions)  # fmt: skip


def _function(vm: dict[str, Any], cloud: dict[str, Any], where: str) -> dict[str, Any]:
    """A VM on IM's OSCAR or Lambda connector: a function record (im_functions.py)."""
    doc = _parse(_text(vm, "info", where, required=True), f"{where}.info")
    systems = doc.of_kind("system")
    if len(systems) != 1:
        raise _fail(f"{where}.info", "must describe exactly one system (the function)")
    try:
        return function_record(vm, cloud, systems[0].id, _values(systems[0]))
    except ValueError as exc:
        raise _fail(where, str(exc)) from None


def _template(data: dict[str, Any]) -> tuple[str, str]:
    extra = data.get("extra_info") or {}
    if not isinstance(extra, dict):
        raise _fail("extra_info", "must be an object")
    tosca = extra.get("TOSCA")
    if tosca is not None:
        if not isinstance(tosca, str) or not tosca.strip():
            raise _fail("extra_info.TOSCA", "must be the TOSCA document as YAML text")
        return tosca, "tosca"
    radl = data.get("radl")
    if not isinstance(radl, str) or not radl.strip():
        raise _fail("radl", "missing: the export holds neither extra_info.TOSCA nor a RADL")
    return _without_fake_systems(radl), "radl"


def _without_fake_systems(radl: str) -> str:
    if FAKE_SYSTEM not in radl:
        return radl
    doc = _parse(radl, "radl")
    doc.sections = [s for s in doc.sections if not s.id.startswith(FAKE_SYSTEM)]
    doc.deploys = [d for d in doc.deploys if not d.system.startswith(FAKE_SYSTEM)]
    return render(doc)


def _parse(text: str, where: str) -> Document:
    try:
        return parse_document(text, where)
    except TemplateError as exc:
        raise _fail(where, f"is not RADL: {exc}") from None


def _vm(vm: dict[str, Any], where: str, notes: list[str]) -> ImVm:
    notes.extend(f"field '{k}' of {where} is not known to Orbis and was not carried over"
                 for k in sorted(set(vm) - VM_KEYS))  # fmt: skip
    if "im_id" not in vm:
        raise _fail(f"{where}.im_id", "missing")
    vm_id = _whole(vm["im_id"], f"{where}.im_id")
    state = vm.get("state")
    if not isinstance(state, str) or state not in IM_STATES:
        known = ", ".join(sorted(IM_STATES))
        raise _fail(f"{where}.state", f"{state!r} is not an IM state ({known})")
    provider_id = vm.get("id")
    if provider_id is not None and not isinstance(provider_id, str | int):
        raise _fail(f"{where}.id", "must be the provider's resource id (a string)")
    destroy = vm.get("destroy", False)
    if not isinstance(destroy, bool):
        raise _fail(f"{where}.destroy", "must be true or false")
    site = _site(vm.get("cloud"), f"{where}.cloud")
    doc = _parse(_text(vm, "info", where, required=True), f"{where}.info")
    systems = doc.of_kind("system")
    if len(systems) != 1 or not systems[0].features:
        raise _fail(f"{where}.info", "must describe exactly one system (the VM)")
    error = vm.get("error_msg")
    found = ImVm(vm_id, systems[0].id, str(state), str(provider_id) if provider_id else None,
                 site, log=_text(vm, "cont_out", where),
                 error=error if isinstance(error, str) else "", deleted=destroy)  # fmt: skip
    _read_system(found, systems[0], doc, f"{where}.info", notes)
    return found


def _site(cloud: Any, where: str) -> str | None:
    if cloud is None:
        raise _fail(where, "missing: the cloud the VM runs on")
    info = _object(cloud, where)
    kind = info.get("type")
    if not isinstance(kind, str) or not kind:
        raise _fail(f"{where}.type", "missing")
    if kind.lower() in LOCAL_TYPES:
        return None
    site = info.get("id")
    if not isinstance(site, str) or not site:
        raise _fail(f"{where}.id", "missing: the auth line id of the VM's cloud")
    return site


def _values(section: Section) -> dict[str, Any]:
    return {f.name: f.value for f in section.features or [] if isinstance(f, Feature)
            and f.op == "="}  # fmt: skip


def _read_system(vm: ImVm, system: Section, doc: Document, where: str, notes: list[str]) -> None:
    values = _values(system)
    networks = {n.id: _values(n) for n in doc.of_kind("network")}
    public = {nid for nid, v in networks.items() if str(v.get("outbound", "no")).lower() == "yes"}
    index = 0
    while f"net_interface.{index}.connection" in values:
        ip = values.get(f"net_interface.{index}.ip")
        if isinstance(ip, str) and ip:
            if str(values[f"net_interface.{index}.connection"]) in public:
                vm.public_ip = vm.public_ip or ip
            else:
                vm.private_ip = vm.private_ip or ip
        index += 1
    user = values.get("disk.0.os.credentials.username")
    if user is not None:
        if not isinstance(user, str) or not user:
            raise _fail(where, "disk.0.os.credentials.username must be a user name")
        vm.ssh_user = user
    key = values.get("disk.0.os.credentials.private_key")
    if key is not None and not isinstance(key, str):
        raise _fail(where, "disk.0.os.credentials.private_key must be text")
    vm.private_key = key or None
    if values.get("disk.0.os.credentials.password"):
        notes.append(f"VM {vm.vm_id}: its SSH password is not carried over (Orbis uses keys)")
    for nid in public:
        ports, problems = parse_outports(str(networks[nid].get("outports") or "22"))
        if problems:
            raise _fail(where, f"network {nid}: outports: {'; '.join(problems)}")
        for p in ports:
            if p.protocol == "tcp" and (p.target or p.port) == 22 and p.port != 22:
                vm.ssh_port = p.port


def _set_jumps(vms: list[ImVm]) -> None:
    """A VM with no public address is reached through one of its site that has one (as the
    deployer does for the nodes it launches)."""
    for vm in vms:
        if vm.public_ip or vm.deleted:
            continue
        front = next((o for o in vms if o.site == vm.site and o.public_ip and not o.deleted), None)
        if front is not None:
            vm.jump = f"{front.ssh_user}@{front.public_ip}:{front.ssh_port or 22}"
