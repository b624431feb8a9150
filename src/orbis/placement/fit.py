"""Which flavor (machine size) fits a node, and how well a site fits it.

IM's rule, kept because users rely on it: among the flavors that meet every requirement, take
the cheapest, then the one with the fewest PCI devices, then the smallest (vcpus, ram, disk).
Requirements in a template are minimums (TOSCA host capabilities, RADL `>=`); an explicit
`instance_type` is matched by name (`*` wildcards allowed) and overrides the sizes.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from orbis.model.infrastructure import Compute
from orbis.providers.base import Flavor

GB = 1024**3
MB = 1024**2
# IM asks for a flavor disk of at least 5 GB when the template says nothing about disks
DEFAULT_MIN_DISK_GB = 5


def requirement_misses(
    flavor: Flavor, compute: Compute, *, min_disk_gb: int | None = None
) -> list[str]:
    """Why `flavor` cannot host `compute` (empty: it can)."""
    misses = []
    if compute.instance_type and not fnmatch.fnmatchcase(flavor.name, compute.instance_type):
        return [f"not named {compute.instance_type}"]
    if compute.num_cpus and flavor.vcpus < compute.num_cpus:
        misses.append(f"{flavor.vcpus} vCPUs < {compute.num_cpus:g}")
    if compute.mem_size and flavor.ram_mb * MB < compute.mem_size:
        misses.append(f"{flavor.ram_mb} MB RAM < {compute.mem_size // MB} MB")
    wanted_disk = min_disk_gb
    if wanted_disk is None:
        wanted_disk = -(-compute.disk_size // GB) if compute.disk_size else DEFAULT_MIN_DISK_GB
    if flavor.disk_gb and flavor.disk_gb < wanted_disk:
        misses.append(f"{flavor.disk_gb} GB disk < {wanted_disk} GB")
    if compute.num_gpus:
        if flavor.gpus < compute.num_gpus:
            misses.append(f"{flavor.gpus} GPUs < {compute.num_gpus}")
        for wanted, have in ((compute.gpu_vendor, flavor.gpu_vendor),
                             (compute.gpu_model, flavor.gpu_model)):  # fmt: skip
            if wanted and (not have or wanted.lower() not in have.lower()):
                misses.append(f"GPU {have or 'unknown'} is not {wanted}")
    if compute.features.get("cpu.sgx") and not flavor.sgx:
        misses.append("no SGX")
    if compute.cpu_arch and flavor.arch and compute.cpu_arch not in flavor.arch:
        misses.append(f"architecture {'/'.join(flavor.arch)} is not {compute.cpu_arch}")
    return misses


def flavor_order(flavor: Flavor) -> tuple[float, int, int, int, int]:
    price = flavor.price if flavor.price is not None else float("inf")
    return (price, flavor.pci_devices, flavor.vcpus, flavor.ram_mb, flavor.disk_gb)


def smallest_fitting(
    flavors: Iterable[Flavor], compute: Compute, *, min_disk_gb: int | None = None
) -> Flavor | None:
    """The flavor IM would choose for `compute`, or None when none fits."""
    fitting = [f for f in flavors if not requirement_misses(f, compute, min_disk_gb=min_disk_gb)]
    return min(fitting, key=flavor_order) if fitting else None


def explain_no_fit(flavors: Iterable[Flavor], compute: Compute) -> str:
    """A message for a user whose node fits no flavor: the closest few and what each lacks."""
    flavors = sorted(flavors, key=flavor_order)
    if not flavors:
        return "the site offers no flavors"
    near = sorted(flavors, key=lambda f: len(requirement_misses(f, compute)))[:3]
    detail = "; ".join(f"{f.name}: {', '.join(requirement_misses(f, compute))}" for f in near)
    return f"no flavor fits {compute.name} (closest: {detail})"
