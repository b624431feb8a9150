"""Import of IM's export (im_read.py reads it): an IM user moves a running infrastructure to
Orbis. Its VMs become nodes with their provider ids, under the adoption rule (adoption.py):
IM's data carries no Orbis owner mark, so a node on the server's own back-end comes in detached
and a cloud node is adopted only when the importer's own credentials for its site see it."""

from __future__ import annotations

from typing import Any

import asyncssh

from orbis.auth import Identity
from orbis.configure.ssh import generate_key_pair
from orbis.paths import new_id
from orbis.service.adoption import DETACHED, detached_reason
from orbis.service.core import ServiceBase
from orbis.service.errors import InvalidRequest
from orbis.service.function_adoption import adopt_functions
from orbis.service.im_functions import hosted_records
from orbis.service.im_read import PREFIX, ImInfrastructure, read_im_export


def key_pair(found: ImInfrastructure) -> tuple[str, str, list[str]]:
    """(private, public, notes): the VMs' SSH key (one per infrastructure in Orbis, as IM's
    connectors make it), or a new pair when the export has none."""
    keys = {vm.vm_id: vm.private_key for vm in found.live() if vm.private_key}
    if not keys:
        private, public = generate_key_pair()
        return private, public, ["the export holds no SSH private key: a new one was made, "
                                 "which the imported VMs do not know"]  # fmt: skip
    first, private = next(iter(keys.items()))
    try:
        public = asyncssh.import_private_key(private).export_public_key().decode().strip()
    except (asyncssh.KeyImportError, ValueError):
        raise InvalidRequest(f"{PREFIX}: VM {first}: disk.0.os.credentials.private_key "
                             "is not an SSH private key") from None  # fmt: skip
    others = sorted(vm for vm, key in keys.items() if key != private)
    notes = [f"VMs {others} have SSH keys of their own; Orbis keeps one per infrastructure "
             f"(VM {first}'s), so it cannot reach them by SSH"] if others else []  # fmt: skip
    return private, public, notes


class ImImportMixin(ServiceBase):
    async def import_im(self, who: Identity, data: dict[str, Any]) -> str:
        found = read_im_export(data)
        # before the template is parsed, any row is written or any cloud is asked
        self.check_quota(who.key, len(found.live()))
        file_name = "template.yaml" if found.template_format == "tosca" else "template.radl"
        try:
            template, language = await self.parse_async(found.template, file_name)
        except InvalidRequest as exc:
            where = "extra_info.TOSCA" if found.template_format == "tosca" else "radl"
            raise InvalidRequest(f"{PREFIX}: {where}: {exc}") from None
        known = set(template.computes) | set(template.containers)
        for vm in found.live():
            if vm.name not in known:
                raise InvalidRequest(f"{PREFIX}: VM {vm.vm_id}: system '{vm.name}' is not in "
                                     f"the infrastructure's template")  # fmt: skip
        for fn in found.functions:
            if fn["name"] not in template.functions:
                raise InvalidRequest(f"{PREFIX}: function '{fn['name']}' is not in the "
                                     f"infrastructure's template")  # fmt: skip
        private, public, notes = key_pair(found)
        nodes = [vm.row() for vm in found.vms]
        for node in nodes:
            if node["deleted"]:
                continue
            node["adoption"] = await self.adoption(who, node)
            if node["adoption"] == DETACHED:
                node["log"] = f"{node['log']}{detached_reason(node['vm_id'])}\n"
        # unhosted functions were VMs on IM's connectors; hosted ones are read from the
        # template, at their OSCAR node's imported machine (im_functions.py); either is the
        # client's text: adopted by the rule of Orbis's own format (function_adoption.py)
        named = {f["name"] for f in found.functions}
        functions = [*found.functions, *(f for f in hosted_records(template, nodes)
                                         if f["name"] not in named)]  # fmt: skip
        await adopt_functions(who, functions, nodes, template)
        log = found.log + "".join(f"Imported from IM: {n}\n" for n in [*found.notes, *notes])
        infra_id = new_id()  # never IM's id: an id is a path here and a label on resources
        infra = {
            "id": infra_id, "owner_key": who.key, "owner_name": who.name,
            "name": template.name, "phase": "done", "template": found.template,
            "template_format": language, "template_file": file_name,
            "provider": self.provider.name, "log": log, "next_vm_id": found.next_vm_id,
            "ssh_private_key": self.seal_private_key(private), "ssh_public_key": public,
            "generation": 1, "reconciled": 1,
        }  # fmt: skip
        try:
            self.store.import_rows(infra, nodes, [], who.owners(), functions)
        except Exception as exc:  # a value the database refuses; the store rolled back
            raise InvalidRequest(f"{PREFIX}: a value does not fit ({type(exc).__name__})"
                                 ) from None  # fmt: skip
        self.record_access(infra_id, who)
        return infra_id
