"""Instance types (the flavor catalogue, cached per endpoint and region), prices and quotas.

IM's flavor rule (placement/fit.py): the cheapest type that fits, x86_64 unless said.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from orbis.model.infrastructure import Compute
from orbis.placement.fit import explain_no_fit, smallest_fitting
from orbis.providers.base import Flavor, NotFound, QuotaUse
from orbis.providers.ec2.errors import _errors
from orbis.providers.ec2.session import EC2Session

_CATALOGUE: dict[tuple[str, str], list[Flavor]] = {}  # (endpoint, region) -> instance types


_CATALOGUE_LOCK = threading.Lock()


# On-demand Linux prices (USD/h, us-east-1) of common types; EC2 has no price API without the
# Pricing service, and a flavor with no price sorts after every priced one.
PRICES = {
    "t2.nano": 0.0058, "t2.micro": 0.0116, "t2.small": 0.023, "t2.medium": 0.0464,
    "t2.large": 0.0928, "t2.xlarge": 0.1856, "t2.2xlarge": 0.3712,
    "t3.nano": 0.0052, "t3.micro": 0.0104, "t3.small": 0.0208, "t3.medium": 0.0416,
    "t3.large": 0.0832, "t3.xlarge": 0.1664, "t3.2xlarge": 0.3328,
    "t3a.nano": 0.0047, "t3a.micro": 0.0094, "t3a.small": 0.0188, "t3a.medium": 0.0376,
    "t3a.large": 0.0752, "t3a.xlarge": 0.1504, "t3a.2xlarge": 0.3008,
    "t4g.nano": 0.0042, "t4g.micro": 0.0084, "t4g.small": 0.0168, "t4g.medium": 0.0336,
    "t4g.large": 0.0672, "t4g.xlarge": 0.1344, "t4g.2xlarge": 0.2688,
    "m5.large": 0.096, "m5.xlarge": 0.192, "m5.2xlarge": 0.384, "m5.4xlarge": 0.768,
    "m6i.large": 0.096, "m6i.xlarge": 0.192, "m6i.2xlarge": 0.384, "m6i.4xlarge": 0.768,
    "c5.large": 0.085, "c5.xlarge": 0.17, "c5.2xlarge": 0.34, "c5.4xlarge": 0.68,
    "r5.large": 0.126, "r5.xlarge": 0.252, "r5.2xlarge": 0.504, "r5.4xlarge": 1.008,
    "g4dn.xlarge": 0.526, "g4dn.2xlarge": 0.752, "g5.xlarge": 1.006, "p3.2xlarge": 3.06,
}  # fmt: skip


def _flavor(info: Mapping[str, Any]) -> Flavor:
    gpus = (info.get("GpuInfo") or {}).get("Gpus") or []
    return Flavor(
        id=info["InstanceType"],
        name=info["InstanceType"],
        vcpus=int(info.get("VCpuInfo", {}).get("DefaultVCpus", 0)),
        ram_mb=int(info.get("MemoryInfo", {}).get("SizeInMiB", 0)),
        gpus=sum(int(g.get("Count", 0)) for g in gpus),
        gpu_vendor=gpus[0].get("Manufacturer") if gpus else None,
        gpu_model=gpus[0].get("Name") if gpus else None,
        price=PRICES.get(info["InstanceType"]),
        arch=tuple(info.get("ProcessorInfo", {}).get("SupportedArchitectures") or ()),
        extra={"instance_storage_gb": (info.get("InstanceStorageInfo") or {}).get("TotalSizeInGB")},
    )


class Catalogue(EC2Session):
    """The region's instance types, the account's quotas, the flavor a node gets."""

    def flavors(self, region: str | None = None) -> list[Flavor]:
        """The region's instance types; cached for the process, as IM does (the catalogue is
        large and slow to read, and the same for every account)."""
        ec2 = self.client(region)
        key = (ec2.meta.endpoint_url, ec2.meta.region_name)
        with _CATALOGUE_LOCK:
            if key not in _CATALOGUE:
                flavors = []
                with _errors("list instance types"):
                    for page in ec2.get_paginator("describe_instance_types").paginate():
                        flavors += [_flavor(t) for t in page["InstanceTypes"]]
                _CATALOGUE[key] = flavors
            return _CATALOGUE[key]

    def quotas(self) -> dict[str, QuotaUse]:
        ec2 = self.client()
        with _errors("read account attributes"):
            attrs = ec2.describe_account_attributes()["AccountAttributes"]
            limits = {
                a["AttributeName"]: a["AttributeValues"][0]["AttributeValue"]
                for a in attrs
                if a.get("AttributeValues")
            }
            quotas = {}
            if str(limits.get("max-instances", "")).isdigit():
                alive = [{"Name": "instance-state-name", "Values": ["pending", "running"]}]
                used = sum(
                    len(r["Instances"])
                    for page in ec2.get_paginator("describe_instances").paginate(Filters=alive)
                    for r in page["Reservations"]
                )
                quotas["instances"] = QuotaUse(used, float(limits["max-instances"]))
            if str(limits.get("vpc-max-elastic-ips", "")).isdigit():
                used = len(ec2.describe_addresses()["Addresses"])
                quotas["floating_ips"] = QuotaUse(used, float(limits["vpc-max-elastic-ips"]))
        return quotas

    def choose_flavor(self, compute: Compute, region: str | None = None) -> Flavor:
        """IM's rule: the cheapest type that fits; x86_64 unless the node says otherwise. EBS
        root disks have any size, so flavors have no disk minimum."""
        wanted = compute if compute.cpu_arch else dataclasses.replace(compute, cpu_arch="x86_64")
        flavors = self.flavors(region)
        chosen = smallest_fitting(flavors, wanted, min_disk_gb=0)
        if chosen is None:  # IM falls back to a t1.micro it never uses: say why instead
            raise NotFound(f"ec2: {explain_no_fit(flavors, wanted)}")
        return chosen
