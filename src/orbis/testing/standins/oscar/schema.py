"""The service definition the OSCAR stand-in accepts: OSCAR's FDL fields with their types.

Stricter than OSCAR in one way, on purpose: an unknown field is refused (OSCAR's JSON binding
ignores it), so a misspelt field Orbis sends fails a test instead of being dropped silently.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T|k|m)?$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StorageIO(Strict):
    storage_provider: str
    path: str = Field(pattern=r"[^ /]")  # shown back as sent; `bucket_path` is what is used
    suffix: list[str] | None = None
    prefix: list[str] | None = None

    @property
    def bucket_path(self) -> str:
        """`bucket/folder`: OSCAR trims blanks and '/' around the path it is given."""
        return self.path.strip(" /")


class MinIOProvider(Strict):
    endpoint: str
    verify: bool = True
    access_key: str
    secret_key: str
    region: str = "us-east-1"


class S3Provider(Strict):
    access_key: str
    secret_key: str
    region: str


HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]+)?$")  # OSCAR adds https:// to these itself
HostName = Annotated[str, Field(pattern=HOST.pattern)]


class OnedataProvider(Strict):
    oneprovider_host: HostName
    token: str
    space: str


class WebDavProvider(Strict):
    hostname: HostName
    login: str
    password: str


class RucioProvider(Strict):
    host: HostName
    auth_host: HostName
    account: str
    rse: str
    refresh_token: str
    oidc_audience: str
    token_endpoint: str


class StorageProviders(Strict):
    """Every kind OSCAR takes; only MinIO ones are exercised (jobs read and write them), the
    others are checked and stored, and shown back as they came."""

    minio: dict[str, MinIOProvider] | None = None
    s3: dict[str, S3Provider] | None = None
    onedata: dict[str, OnedataProvider] | None = None
    webdav: dict[str, WebDavProvider] | None = None
    rucio: dict[str, RucioProvider] | None = None


class Environment(Strict):
    """OSCAR's Go decoder matches JSON keys without case: IM's `Variables` is read as
    `variables` (both together: one map). The stand-in takes these two spellings only."""

    variables: dict[str, str] | None = None
    Variables: dict[str, str] | None = None
    secrets: dict[str, str] | None = None

    @property
    def all_variables(self) -> dict[str, str]:
        return {**(self.Variables or {}), **(self.variables or {})}


NonNegative = Annotated[int, Field(ge=0)]
Quantity = Annotated[str, Field(pattern=QUANTITY.pattern)]


class Expose(Strict):
    min_scale: NonNegative | None = None
    max_scale: NonNegative | None = None
    api_port: int | None = Field(default=None, ge=1, le=65535)
    cpu_threshold: NonNegative | None = None
    rewrite_target: bool | None = None
    nodePort: NonNegative | None = None  # OSCAR spells it so
    default_command: bool | None = None
    set_auth: bool | None = None
    health_path: str | None = None
    probe_mode: str | None = None


class Synchronous(Strict):
    min_scale: NonNegative | None = None
    max_scale: NonNegative | None = None


class Mount(Strict):
    storage_provider: str
    path: str = Field(min_length=1)


class Volume(Strict):
    name: str | None = None
    size: Quantity
    mount_path: str = Field(pattern=r"^/")
    lifecycle_policy: Literal["delete", "retain"] | None = None


class Replica(Strict):
    type: Literal["oscar", "endpoint"]
    cluster_id: str | None = None
    service_name: str | None = None
    url: str | None = None
    ssl_verify: bool | None = None
    priority: int = 0
    headers: dict[str, str] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Replica:
        if self.type == "oscar" and not (self.cluster_id and self.service_name):
            raise ValueError("an oscar replica needs cluster_id and service_name")
        if self.type == "endpoint" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError("an endpoint replica needs a url")
        return self


class Cluster(Strict):
    endpoint: str
    auth_user: str | None = None
    auth_password: str | None = None
    ssl_verify: bool | None = None


class Service(Strict):
    name: str
    image: str = Field(min_length=1)
    script: str = Field(min_length=1)
    memory: str | None = None
    cpu: str | None = None
    log_level: Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET"] | None = None
    alpine: bool | None = None
    enable_gpu: bool | None = None
    enable_sgx: bool | None = None
    image_pull_secrets: list[str] | None = None
    expose: Expose | None = None
    environment: Environment | None = None
    input: list[StorageIO] | None = None
    output: list[StorageIO] | None = None
    storage_providers: StorageProviders | None = None
    replicas: list[Replica] | None = None
    clusters: dict[str, Cluster] | None = None
    token: str | None = None  # OSCAR sets it; a client may send back what it read
    # newer OSCAR (its service type's JSON names)
    total_memory: Quantity | None = None
    total_cpu: str | None = None
    synchronous: Synchronous | None = None
    delegation: Literal["static", "random", "load-based", "topsis"] | None = None
    rescheduler_threshold: NonNegative | None = None
    file_stage_in: bool | None = None
    image_prefetch: bool | None = None
    annotations: dict[str, str] | None = None
    labels: dict[str, str] | None = None
    vo: str | None = None
    visibility: Literal["private", "public", "restricted"] | None = None
    allowed_users: list[str] | None = None
    isolation_level: Literal["USER", "SERVICE"] | None = None
    mount: Mount | None = None
    volume: Volume | None = None
    interlink_node_name: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("must be a Kubernetes name (a-z, 0-9, '-', at most 63)")
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None and not QUANTITY.match(value):
            raise ValueError(f"'{value}' is not a Kubernetes quantity")
        return value

    @field_validator("cpu", "total_cpu")
    @classmethod
    def _cpu(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                float(value)
            except ValueError:
                raise ValueError(f"'{value}' is not a number of CPUs") from None
        return value

    @model_validator(mode="after")
    def _references(self) -> Service:
        defined = self.storage_providers or StorageProviders()
        mounted = [self.mount] if self.mount else []
        for key, items in (("input", self.input), ("output", self.output), ("mount", mounted)):
            for item in items or []:
                kind, _, sid = item.storage_provider.partition(".")
                if kind not in ("minio", "s3", "onedata", "webdav", "rucio"):
                    raise ValueError(f"{key}: unknown storage provider kind '{kind}'")
                if kind == "minio" and sid in ("", "default"):
                    continue
                if sid not in (getattr(defined, kind) or {}):
                    raise ValueError(f"{key}: storage provider '{item.storage_provider}' "
                                     "is not defined")  # fmt: skip
        if self.allowed_users and self.visibility != "restricted":
            raise ValueError("allowed_users is only read with visibility: restricted")
        for replica in self.replicas or []:
            if replica.type == "oscar" and replica.cluster_id not in (self.clusters or {}):
                raise ValueError(f"replica cluster '{replica.cluster_id}' is not in clusters")
        return self
