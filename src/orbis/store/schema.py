"""Database tables: infrastructures, their nodes, configuration steps, and every state change."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class InfrastructureRow(Base):
    __tablename__ = "infrastructures"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_key: Mapped[str] = mapped_column(String(64), index=True)  # hash of the IM identity
    owner_name: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    # creating → configuring → done; or deleting → deleted. Node states give the rest.
    phase: Mapped[str] = mapped_column(String(32), default="creating")
    template: Mapped[str] = mapped_column(Text)
    template_format: Mapped[str] = mapped_column(String(16), default="tosca")
    template_file: Mapped[str] = mapped_column(String(255), default="template.yaml")
    provider: Mapped[str] = mapped_column(String(64), default="local")
    ssh_public_key: Mapped[str] = mapped_column(Text, default="")
    ssh_private_key: Mapped[str] = mapped_column(Text, default="")
    log: Mapped[str] = mapped_column(Text, default="")  # the infrastructure-level contmsg
    next_vm_id: Mapped[int] = mapped_column(Integer, default=0)
    # Desired state: "present" or "absent". Every change of what is wanted bumps `generation`;
    # the reconciler records the generation it has brought about in `reconciled`.
    desired: Mapped[str] = mapped_column(String(16), default="present", server_default="present")
    generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    reconciled: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    # cloud credential lines of the creator, Fernet-encrypted (orbis.secrets); never plain text
    credentials: Mapped[str] = mapped_column(Text, default="", server_default="")


class OwnerRow(Base):
    """An identity allowed to act on an infrastructure (IM's list of owners)."""

    __tablename__ = "owners"
    __table_args__ = (UniqueConstraint("infrastructure_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    infrastructure_id: Mapped[str] = mapped_column(
        ForeignKey("infrastructures.id", ondelete="CASCADE"), index=True
    )
    # HMAC-SHA256 of user and password (auth/identity.py); `legacy`: the unsalted sha256 of
    # before 0303, replaced at the owner's next request (store/sealing.py)
    key: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255))  # user name, or __OPENID__<sub>
    legacy: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class NodeRow(Base):
    __tablename__ = "nodes"
    __table_args__ = (UniqueConstraint("infrastructure_id", "vm_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    infrastructure_id: Mapped[str] = mapped_column(
        ForeignKey("infrastructures.id", ondelete="CASCADE"), index=True
    )
    vm_id: Mapped[int] = mapped_column(Integer)  # IM's per-infrastructure VM number
    name: Mapped[str] = mapped_column(String(255))  # node template name
    state: Mapped[str] = mapped_column(String(32), default="pending")
    provider_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    private_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    public_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ssh_user: Mapped[str] = mapped_column(String(64), default="root")
    ssh_port: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: 22
    # a container app's addresses (IM's `endpoints` attribute); None for machines
    endpoints: Mapped[list | None] = mapped_column(JSON, nullable=True)
    # the site (auth line id or catalogue name) the node runs on; None = the default back-end
    site: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # a node without a public address is reached through this one (SSH jump): "user@host:port"
    jump: Mapped[str | None] = mapped_column(String(255), nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    log: Mapped[str] = mapped_column(Text, default="")  # this node's contmsg
    # Desired state of the node: running, stopped or absent; and pending work on it.
    desired: Mapped[str] = mapped_column(String(16), default="running", server_default="running")
    needs_config: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    reboot_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    spec: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # size overrides (alter)
    # "" for a node this infrastructure launched; for an imported one, "adopted" (its provider
    # resource carries the importer's owner mark, or their own credentials see it) or
    # "detached" (nothing is ever done to it: service/adoption.py)
    adoption: Mapped[str] = mapped_column(String(16), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class StepRow(Base):
    """One configuration step (a node's playbook) run on one node."""

    __tablename__ = "steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    infrastructure_id: Mapped[str] = mapped_column(
        ForeignKey("infrastructures.id", ondelete="CASCADE"), index=True
    )
    vm_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    level: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    output: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EventRow(Base):
    """A state transition of an infrastructure, a node or a step, with its time."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    infrastructure_id: Mapped[str] = mapped_column(
        ForeignKey("infrastructures.id", ondelete="CASCADE"), index=True
    )
    vm_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    subject: Mapped[str] = mapped_column(String(16))  # infrastructure | node | step
    name: Mapped[str] = mapped_column(String(255), default="")
    from_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_state: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class ActionRow(Base):
    """One provider action, written before it runs and updated after (crash forensics)."""

    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    infrastructure_id: Mapped[str] = mapped_column(
        ForeignKey("infrastructures.id", ondelete="CASCADE"), index=True
    )
    vm_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(32))  # launch, destroy, stop, start, reboot, ...
    status: Mapped[str] = mapped_column(String(16), default="started")  # started, done, failed
    message: Mapped[str] = mapped_column(Text, default="")
    holder: Mapped[str] = mapped_column(String(255), default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SiteUseRow(Base):
    """A cloud site an infrastructure was prepared at (networks, keys, leases made there),
    written before the first call; destroy cleans every one, including sites a node only
    tried before falling back to the next."""

    __tablename__ = "site_uses"
    __table_args__ = (UniqueConstraint("infrastructure_id", "site"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    infrastructure_id: Mapped[str] = mapped_column(
        ForeignKey("infrastructures.id", ondelete="CASCADE"), index=True
    )
    site: Mapped[str] = mapped_column(String(255))


class SnapshotRow(Base):
    """An image saved from a node's disk (IM's disk snapshot); `auto_delete` images go when
    the infrastructure does."""

    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    infrastructure_id: Mapped[str] = mapped_column(
        ForeignKey("infrastructures.id", ondelete="CASCADE"), index=True
    )
    vm_id: Mapped[int] = mapped_column(Integer)
    disk: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(255))
    site: Mapped[str | None] = mapped_column(String(255), nullable=True)  # None: local back-end
    url: Mapped[str] = mapped_column(Text)
    auto_delete: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LockRow(Base):
    """A lease that serializes work on one infrastructure across service processes."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MetaRow(Base):
    """Facts about this installation (e.g. its id, used to label cloud resources)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class UserQuotaRow(Base):
    """An administrator's node quotas for one identity (its owner key); None: the setting."""

    __tablename__ = "user_quotas"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    max_nodes_per_infra: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_nodes_per_user: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class FunctionRow(Base):
    """A function the infrastructure made on OSCAR or AWS Lambda (engine/functions.py): where
    it went and the digest of what was sent, so an unchanged function is not sent again."""

    __tablename__ = "functions"
    __table_args__ = (UniqueConstraint("infrastructure_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    infrastructure_id: Mapped[str] = mapped_column(
        ForeignKey("infrastructures.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))  # node template name
    backend: Mapped[str] = mapped_column(String(16), default="oscar")  # oscar | lambda
    # the auth line id (unhosted) or "node:<OSCAR node>" (hosted) it went to
    site: Mapped[str] = mapped_column(String(255), default="")
    service: Mapped[str] = mapped_column(String(255), default="")  # its name there
    endpoint: Mapped[str] = mapped_column(Text, default="")
    digest: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(32), default="pending")  # pending/running/failed
    error: Mapped[str] = mapped_column(Text, default="")
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class UserCredentialRow(Base):
    """A cloud credential a dashboard user stored (docs/web.md): the whole IM auth line sealed
    like the API's credentials; `hint` is what the page shows (no secret in it)."""

    __tablename__ = "user_credentials"
    __table_args__ = (UniqueConstraint("owner_key", "label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_key: Mapped[str] = mapped_column(String(64), index=True)
    label: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    sealed: Mapped[str] = mapped_column(Text)
    hint: Mapped[str] = mapped_column(String(512), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
