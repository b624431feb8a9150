"""Nova flavors (with IM's reading of extra_specs: GPUs, SGX, PCI devices; cached ten
minutes), the project's quotas (Nova, Neutron and Cinder when present) and IM's flavor rule.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import replace
from typing import Any

import openstack.exceptions as os_exc
from keystoneauth1 import exceptions as ks_exc

from orbis.model.infrastructure import Compute
from orbis.placement.fit import explain_no_fit, smallest_fitting
from orbis.providers.base import Flavor, NotFound, QuotaUse
from orbis.providers.openstack.session import OpenStackSession


def _to_flavor(flavor: Any, specs: Mapping[str, Any]) -> Flavor:
    """A Nova flavor with IM's reading of its extra_specs (GPUs, SGX, PCI devices)."""
    specs = {str(k): str(v) for k, v in specs.items()}
    gpus, vendor, model, unknown = 0, None, None, False
    if specs.get("Accelerator:Type", "").lower() == "gpu":  # the EGI convention
        number = specs.get("Accelerator:Number", "1")
        gpus = int(number) if number.isdigit() else 1
        vendor, model = specs.get("Accelerator:Vendor"), specs.get("Accelerator:Model")
    elif any("gpu" in k.lower() and v.lower() not in ("false", "no", "0", "")
             for k, v in specs.items()):  # fmt: skip
        gpus, unknown = 1, True
    pci = 0
    for alias in specs.get("pci_passthrough:alias", "").split(","):
        count = alias.rpartition(":")[2].strip()
        pci += int(count) if count.isdigit() else 0
    return Flavor(
        id=str(flavor.id), name=str(flavor.name), vcpus=int(flavor.vcpus or 0),
        ram_mb=int(flavor.ram or 0), disk_gb=int(flavor.disk or 0), gpus=gpus,
        gpu_vendor=vendor, gpu_model=model, sgx=any("sgx" in k.lower() for k in specs),
        pci_devices=pci, extra={"extra_specs": specs, "gpu_count_unknown": unknown})  # fmt: skip


class Catalogue(OpenStackSession):
    """Flavors, quotas and the flavor a node gets."""

    def flavors(self) -> list[Flavor]:
        if self._flavors and time.monotonic() - self._flavors[0] < 600:
            return self._flavors[1]
        with self._errors("list flavors"):
            found = []
            for flavor in self.conn.compute.flavors(details=True):
                if flavor.is_disabled:
                    continue
                specs = flavor.extra_specs
                if not specs:  # before microversion 2.61 they are a call of their own
                    specs = self.conn.compute.fetch_flavor_extra_specs(flavor).extra_specs
                found.append(_to_flavor(flavor, specs or {}))
        self._flavors = (time.monotonic(), found)
        return found

    def quotas(self) -> dict[str, QuotaUse]:
        conn, out = self.conn, {}
        with self._errors("quotas"):
            project = conn.current_project_id
            nova = self._get(conn.compute, f"/os-quota-sets/{project}/detail")["quota_set"]
            for key in ("cores", "ram", "instances"):
                out[key] = QuotaUse(nova[key]["in_use"] + nova[key].get("reserved", 0),
                                    nova[key]["limit"])  # fmt: skip
            with suppress(os_exc.SDKException, ks_exc.EndpointNotFound):  # Neutron's, if any
                neutron = self._get(conn.network, f"/quotas/{project}/details")["quota"]
                for key, name in (("floating_ips", "floatingip"),
                                  ("security_groups", "security_group")):  # fmt: skip
                    q = neutron[name]
                    out[key] = QuotaUse(q["used"] + q.get("reserved", 0), q["limit"])
            with suppress(os_exc.SDKException, ks_exc.EndpointNotFound):
                cinder = self._get(conn.block_storage,
                                   f"/os-quota-sets/{project}?usage=True")["quota_set"]
                for key, name in (("volumes", "volumes"), ("volume_storage", "gigabytes")):
                    q = cinder[name]
                    out[key] = QuotaUse(q["in_use"] + q.get("reserved", 0), q["limit"])
        return out

    @staticmethod
    def _get(proxy: Any, path: str) -> dict[str, Any]:
        response = proxy.get(path)
        os_exc.raise_from_response(response)
        body: dict[str, Any] = response.json()
        return body

    def _choose_flavor(self, compute: Compute, min_disk_gb: int | None = None) -> Flavor:
        flavors = self.flavors()
        if compute.num_gpus:  # a flavor with a bare "gpu" spec says no count: any count fits
            flavors = [replace(f, gpus=max(f.gpus, compute.num_gpus))
                       if f.extra.get("gpu_count_unknown") else f for f in flavors]  # fmt: skip
        chosen = smallest_fitting(flavors, compute, min_disk_gb=min_disk_gb)
        if chosen is None:
            raise NotFound(f"{self.site}: {explain_no_fit(flavors, compute)}")
        return chosen

    def _current_flavor(self, server: Any) -> Flavor | None:
        ref = server.flavor
        key = getattr(ref, "id", None) or getattr(ref, "original_name", None) or \
            getattr(ref, "name", None)  # fmt: skip
        return next((f for f in self.flavors() if key in (f.id, f.name)), None)
