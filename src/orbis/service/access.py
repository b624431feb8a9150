"""Who may act on an infrastructure: owners (IM's authorization), administrators, the cloud
credentials given at creation and the infrastructure's SSH private key (both kept sealed)."""

from __future__ import annotations

from collections.abc import Mapping

from orbis.auth import Identity
from orbis.lang.regex import RegexError, compile_user_regex
from orbis.ownership import MARK_PURPOSE, OwnerMarks
from orbis.paths import is_safe_id
from orbis.secrets import Sealer
from orbis.service.core import ServiceBase
from orbis.service.errors import Forbidden, InvalidRequest, NotFoundError
from orbis.store import sealing
from orbis.store.schema import InfrastructureRow


class AccessMixin(ServiceBase):
    sealer: Sealer | None = None  # set by configure_access; without it credentials are dropped

    def configure_access(self, sealer: Sealer) -> None:
        self.sealer = sealer
        # rows written before SSH keys were sealed are sealed now (idempotent, at every start)
        sealing.seal_plain_private_keys(self.store, sealer.seal_text)
        # owner marks keyed with the server secret: stable across restarts and servers
        self.deployer.marks = OwnerMarks(sealer.derive(MARK_PURPOSE))
        self.deployer.overlay.sealing = (sealer.seal_text, sealer.open_text)  # the CA's key

    def seal_private_key(self, text: str) -> str:
        """An SSH private key as stored: sealed (plain only without a sealer, in tests)."""
        return self.sealer.seal_text(text) if self.sealer is not None else text

    def private_key(self, row: InfrastructureRow) -> str:
        """The infrastructure's SSH private key, unsealed (for SSH, Ansible and its owner)."""
        if self.sealer is None:
            return row.ssh_private_key
        return self.sealer.open_text(row.ssh_private_key)

    @property
    def _owner_cache(self) -> dict[str, frozenset[str]]:
        # Owners are read on every request; caching them saves a query. Another server on the
        # same database may change them: any commit anywhere (the store's change marker) empties
        # the cache, and without a marker nothing is cached.
        cache: dict[str, frozenset[str]] | None = self.__dict__.get("_owners")
        if cache is None:
            cache = self.__dict__["_owners"] = {}
        return cache

    def owner_keys(self, infra_id: str) -> frozenset[str]:
        marker = self.store.change_marker()
        if marker is None:
            return self.store.owner_keys(infra_id)
        cache = self._owner_cache
        if self.__dict__.get("_owners_marker") != marker:
            cache.clear()
            self.__dict__["_owners_marker"] = marker
        keys = cache.get(infra_id)
        if keys is None:
            keys = cache[infra_id] = self.store.owner_keys(infra_id)
        return keys

    def upgrade_owner_keys(self, legacy_to_new: Mapping[str, str]) -> None:
        """Replace owner keys of the pre-0303 form by the HMAC form of the same identity (the
        Authenticator calls this when a request's identity is first seen). Once none is left
        (checked at the first call and after each upgrade) this costs nothing."""
        if self.__dict__.get("_legacy_owners") is None:
            self.__dict__["_legacy_owners"] = sealing.has_legacy_owner_keys(self.store)
        if not self.__dict__["_legacy_owners"]:
            return
        if sealing.upgrade_owner_keys(self.store, legacy_to_new):
            self._owner_cache.clear()
            self.__dict__["_legacy_owners"] = sealing.has_legacy_owner_keys(self.store)

    def forget_owners(self, infra_id: str) -> None:
        self._owner_cache.pop(infra_id, None)

    # -- checks ----------------------------------------------------------------------------
    def infrastructure(self, who: Identity, infra_id: str) -> InfrastructureRow:
        if not is_safe_id(infra_id):  # `..`, `/`, NUL, overlong: no such id can exist
            raise NotFoundError("Invalid infrastructure ID or access not granted.")
        row = self.store.get(infra_id)
        if row is None:
            raise NotFoundError("Invalid infrastructure ID or access not granted.")
        if row.deleted:
            raise NotFoundError("Deleted infrastructure.")
        if not who.may_act_on(self.owner_keys(infra_id)):
            raise Forbidden("Access to this infrastructure not granted.")
        return row

    def list_ids(self, who: Identity, pattern: str | None = None) -> list[str]:
        """The caller's infrastructures (all, for an administrator), oldest first; `pattern`
        is a regular expression searched in the template each was created from (IM's filter)."""
        try:  # RE2: linear time, so a pattern cannot stall the server (docs/limits.md)
            regex = compile_user_regex(pattern) if pattern else None
        except RegexError as exc:
            raise InvalidRequest(f"Error Getting Inf. List: invalid filter: {exc}") from None
        keys = None if who.admin else list(who.keys or (who.key,))
        rows = self.store.ids_owned_by(keys, with_templates=regex is not None)
        return [i for i, text in rows if regex is None or regex.search(text or "")]

    # -- owners ----------------------------------------------------------------------------
    def record_access(self, infra_id: str, who: Identity) -> None:
        """At creation (or import): the caller's IM identities become the owners, and its
        cloud lines are stored sealed."""
        self.store.add_owners(infra_id, who.owners(), replace=True)
        self.forget_owners(infra_id)
        if who.clouds and self.sealer is not None:
            self.store.set_credentials(infra_id, self.sealer.seal([dict(c) for c in who.clouds]))

    def authorization(self, who: Identity, infra_id: str) -> list[str]:
        row = self.infrastructure(who, infra_id)
        return [o.name for o in self.store.owners(row.id)]

    def change_owners(
        self, who: Identity, infra_id: str, owners: list[tuple[str, str]], *, overwrite: bool
    ) -> None:
        row = self.infrastructure(who, infra_id)
        if not owners:
            raise InvalidRequest("Error modifying Inf. owners: no owner given")
        self.store.add_owners(row.id, owners, replace=overwrite)
        self.forget_owners(row.id)

    def cloud_credentials(self, infra_id: str) -> list[dict[str, str]]:
        """The creator's cloud lines, unsealed (for providers; never for answers or logs)."""
        row = self.store.get(infra_id)
        if row is None or not row.credentials or self.sealer is None:
            return []
        lines = self.sealer.open(row.credentials)
        return [dict(x) for x in lines] if isinstance(lines, list) else []
