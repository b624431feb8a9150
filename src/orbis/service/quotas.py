"""Node quotas: per infrastructure and per user (ORBIS_MAX_NODES_PER_INFRA / _PER_USER, or an
identity's own values set by an administrator). Checked from the counts a template asks for,
before any row or cloud resource is made, so `count: 100000000` costs one comparison."""

from __future__ import annotations

from dataclasses import dataclass

from orbis.auth import Identity
from orbis.config import limits
from orbis.service.core import ServiceBase
from orbis.service.errors import Forbidden, InvalidRequest, QuotaExceeded
from orbis.store import quotas


@dataclass(frozen=True)
class Quota:
    per_infra: int
    per_user: int
    own: bool  # set for this identity by an administrator (else the settings)


class QuotaMixin(ServiceBase):
    def quota_of(self, owner_key: str) -> Quota:
        """The node quotas that apply to the identity with this owner key."""
        bounds = limits()
        row = quotas.user_quota(self.store, owner_key)
        infra = row.max_nodes_per_infra if row is not None else None
        user = row.max_nodes_per_user if row is not None else None
        return Quota(bounds.max_nodes_per_infra if infra is None else infra,
                     bounds.max_nodes_per_user if user is None else user,
                     row is not None)  # fmt: skip

    def check_quota(self, owner_key: str, total: int, infra_id: str | None = None) -> None:
        """Refuse (QuotaExceeded) an infrastructure of `total` nodes for this owner, counting
        the owner's other live infrastructures' nodes (all but `infra_id`)."""
        quota = self.quota_of(owner_key)
        whose = " (set for this user by an administrator)" if quota.own else ""
        if total > quota.per_infra:
            raise QuotaExceeded(f"quota: {total} nodes asked for, at most {quota.per_infra} "
                                f"nodes per infrastructure (ORBIS_MAX_NODES_PER_INFRA){whose}")
        others = quotas.live_nodes(self.store, owner_key, besides=infra_id)
        if others + total > quota.per_user:
            raise QuotaExceeded(f"quota: {total} nodes asked for and {others} in the user's "
                                f"other infrastructures, at most {quota.per_user} nodes per "
                                f"user (ORBIS_MAX_NODES_PER_USER){whose}")  # fmt: skip

    # -- administration --------------------------------------------------------------------
    def quotas(self, who: Identity) -> list[dict[str, object]]:
        """Every known identity with its live nodes and quotas (administrators only)."""
        self._admin_only(who)
        found = []
        for key, (name, used) in sorted(quotas.identities(self.store).items()):
            quota = self.quota_of(key)
            found.append({"key": key, "name": name, "nodes": used, "own": quota.own,
                          "max_nodes_per_infra": quota.per_infra,
                          "max_nodes_per_user": quota.per_user})  # fmt: skip
        return found

    def set_quota(self, who: Identity, owner_key: str, per_infra: int | None,
                  per_user: int | None) -> dict[str, object]:  # fmt: skip
        """Give an identity its own quotas (None: back to the setting); administrators only."""
        self._admin_only(who)
        if any(v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0)
               for v in (per_infra, per_user)):  # fmt: skip
            raise InvalidRequest("Error setting the quota: give whole numbers >= 0 (or null)")
        known = quotas.identities(self.store)
        name = known.get(owner_key, ("", 0))[0]
        quotas.set_user_quota(self.store, owner_key, name, per_infra, per_user)
        quota = self.quota_of(owner_key)
        return {"key": owner_key, "name": name, "own": quota.own,
                "max_nodes_per_infra": quota.per_infra, "max_nodes_per_user": quota.per_user}

    @staticmethod
    def _admin_only(who: Identity) -> None:
        if not who.admin:
            raise Forbidden("Only an administrator (ORBIS_ADMIN_USERS) may read or set quotas")
