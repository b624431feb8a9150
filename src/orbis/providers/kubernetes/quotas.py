"""The ResourceQuotas of the site's namespace (or `default`), under IM's quota names.
"""

from __future__ import annotations

from orbis.providers.base import (
    QuotaUse,
)
from orbis.providers.kubernetes.session import (
    GB,
    MB,
    KubernetesSession,
    _quantity,
)

# ResourceQuota keys, most telling first, as IM's quota names (ram in MB, storage in GB)
_QUOTAS = {
    "limits.cpu": "cores", "requests.cpu": "cores", "cpu": "cores",
    "limits.memory": "ram", "requests.memory": "ram", "memory": "ram",
    "pods": "instances",
    "persistentvolumeclaims": "volumes",
    "requests.storage": "volume_storage",
    "requests.nvidia.com/gpu": "gpus",
    "services.loadbalancers": "floating_ips",
}  # fmt: skip


class Quotas(KubernetesSession):
    """The namespace's quotas."""

    def quotas(self) -> dict[str, QuotaUse]:
        """The ResourceQuotas of the site's namespace (or `default`), as IM's quota names."""
        ns = self._fixed_namespace or "default"
        found = self._must("quotas", self._core.list_namespaced_resource_quota, ns).items
        out: dict[str, QuotaUse] = {}
        for key, name in _QUOTAS.items():
            for quota in found:
                hard = (quota.status.hard if quota.status else None) or quota.spec.hard or {}
                used = (quota.status.used if quota.status else None) or {}
                if key in hard and name not in out:
                    scale = MB if name == "ram" else GB if name == "volume_storage" else 1
                    out[name] = QuotaUse(used=_quantity(used.get(key, 0)) / scale,
                                         limit=_quantity(hard[key]) / scale)  # fmt: skip
        return out
