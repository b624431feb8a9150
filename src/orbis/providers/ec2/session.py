"""The auth line's boto3 session, its clients, labels and the lookups every concern shares.

`user_session` signs with the user's keys only: never the server's own AWS credentials.
`EC2Session` is the base of every mixin of the package: clients per region (and Route53),
per-infrastructure locks, polling, Orbis tags and filters, and reading one instance (by id, by
spot request) as a Machine. A provider id is IM's `<region>;<instance-id>` (or `<sir-…>`).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import boto3
import botocore.config
import botocore.credentials
import botocore.exceptions
import botocore.session

from orbis.model.states import NodeState
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    LABEL_NODE,
    LABEL_SSH_USER,
    Machine,
    NotFound,
    Provider,
    ProviderAuthError,
    QuotaExceeded,
    Transient,
)
from orbis.providers.ec2.errors import _code, _errors

T = TypeVar("T")


DEFAULT_REGION = "us-east-1"


# IM's state table: `stopping` still counts as running
_STATES = {"pending": NodeState.PENDING, "running": NodeState.RUNNING}

_STATES |= {"stopping": NodeState.RUNNING, "stopped": NodeState.STOPPED}

_STATES |= {"shutting-down": NodeState.OFF, "terminated": NodeState.OFF}


_ALIVE = ["pending", "running", "stopping", "stopped"]


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower().replace("_", "-")).strip("-") or "node"


def _split_id(provider_id: str, default_region: str) -> tuple[str, str]:
    region, _, resource = provider_id.rpartition(";")
    return region or default_region, resource


# botocore's settings that name where credentials and profiles come from: for a user's session
# they point nowhere (no AWS_PROFILE, no ~/.aws/config, no ~/.aws/credentials)
_NO_FILES = {
    "profile": (None, None, None, None),
    "config_file": (None, None, os.devnull, None),
    "credentials_file": (None, None, os.devnull, None),
}


def user_session(access_key: str, secret_key: str, token: str | None) -> boto3.session.Session:
    """A boto3 session that signs with the user's keys and nothing else: no credential provider
    at all (so never the server's AWS_* variables, ~/.aws, SSO, credential_process, container
    or instance-metadata credentials) and no profile or config file. The endpoint variables
    (AWS_ENDPOINT_URL*) are the operator's and still apply."""
    if not access_key or not secret_key:
        raise ProviderAuthError(
            "ec2: the auth line needs username (access key id) and password (secret access "
            "key); the server's own AWS credentials are never used (environment, ~/.aws, "
            "instance profile)"
        )
    core = botocore.session.Session(session_vars=_NO_FILES)
    core.register_component("credential_provider", botocore.credentials.CredentialResolver([]))
    core.set_credentials(access_key, secret_key, token)
    return boto3.session.Session(botocore_session=core)


class EC2Session(Provider):
    """Session, clients, labels and instance lookups shared by the EC2 mixins."""

    def __init__(
        self, auth: Mapping[str, str], *, options: Mapping[str, Any] | None = None
    ) -> None:
        options = dict(options or {})
        self.site = auth.get("id") or "EC2"
        self._session = user_session(
            auth.get("username") or "", auth.get("password") or "", auth.get("token") or None
        )
        self.region = auth.get("region") or options.get("region") or DEFAULT_REGION
        self.poll_interval = float(options.get("poll_interval", 5.0))
        self.launch_timeout = float(options.get("launch_timeout", 600.0))
        self.stop_timeout = float(options.get("stop_timeout", 120.0))  # IM: resize waits 120 s
        self.cleanup_timeout = float(options.get("cleanup_timeout", 240.0))
        self._config = botocore.config.Config(
            retries={"max_attempts": int(options.get("max_attempts", 4)), "mode": "standard"},
            connect_timeout=float(options.get("connect_timeout", 10)),
            read_timeout=float(options.get("read_timeout", 60)),
        )
        self._clients: dict[str, Any] = {}
        self._route53: Any = None
        self._dns_lock = threading.Lock()  # one lookup-or-create of a hosted zone at a time
        # every region used (list_owned, cleanup), and those to search after a restart
        self._regions = {self.region, *options.get("regions", ())}
        self._lock = threading.Lock()
        self._infra_locks: dict[str, threading.Lock] = {}

    def client(self, region: str | None = None) -> Any:
        region = region or self.region
        with self._lock:  # boto3 sessions are not thread-safe; the clients they make are
            if region not in self._clients:
                known = self._session.get_available_regions("ec2")
                if known and region not in known:
                    raise NotFound(f"ec2: unknown region {region!r}")
                self._clients[region] = self._session.client(
                    "ec2", region_name=region, config=self._config
                )
                self._regions.add(region)
            return self._clients[region]

    def route53(self) -> Any:
        """The Route53 client (a global service), made as the EC2 ones are: boto3's own
        `AWS_ENDPOINT_URL_ROUTE_53` / `AWS_ENDPOINT_URL` redirect it."""
        with self._lock:
            if self._route53 is None:
                self._route53 = self._session.client(
                    "route53", region_name=self.region, config=self._config
                )
            return self._route53

    def _infra_lock(self, infrastructure_id: str) -> threading.Lock:
        with self._lock:
            return self._infra_locks.setdefault(infrastructure_id, threading.Lock())

    def _wait(self, what: str, check: Callable[[], T | None], timeout: float) -> T:
        """Poll `check` until it returns something; Transient when time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise Transient(f"ec2: {what}: still not done after {timeout:g} s")
            time.sleep(self.poll_interval)

    def _labels(self, infrastructure_id: str) -> dict[str, str]:
        labels = {LABEL_INFRASTRUCTURE: infrastructure_id}
        if self.installation:
            labels[LABEL_INSTALLATION] = self.installation
        return labels

    @staticmethod
    def _tag_spec(kind: str, tags: Mapping[str, str]) -> list[dict[str, Any]]:
        return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]

    def _filters(self, infrastructure_id: str | None = None, **extra: str) -> list[dict[str, Any]]:
        """EC2 filters for resources this installation made (for one infrastructure)."""
        filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in extra.items()]
        if infrastructure_id:
            filters.append({"Name": f"tag:{LABEL_INFRASTRUCTURE}", "Values": [infrastructure_id]})
        else:
            filters.append({"Name": "tag-key", "Values": [LABEL_INFRASTRUCTURE]})
        if self.installation:
            filters.append({"Name": f"tag:{LABEL_INSTALLATION}", "Values": [self.installation]})
        return filters

    @staticmethod
    def _spot_instance(ec2: Any, request_id: str) -> str | None:
        found = ec2.describe_spot_instance_requests(SpotInstanceRequestIds=[request_id])
        if not found["SpotInstanceRequests"]:  # moto forgets cancelled requests
            raise NotFound(f"ec2: spot request {request_id} not found")
        request = found["SpotInstanceRequests"][0]
        if request.get("State") in ("failed", "cancelled", "closed") and not request.get(
            "InstanceId"
        ):
            status = request.get("Status", {})
            raise QuotaExceeded(
                f"ec2: spot request {request_id} {request['State']}: "
                f"{status.get('Message') or status.get('Code', '')}"
            )
        return request.get("InstanceId") or None

    def _describe(self, ec2: Any, instance_id: str) -> dict[str, Any] | None:
        try:
            found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        except botocore.exceptions.ClientError as err:
            if _code(err).startswith("InvalidInstanceID."):
                return None
            raise
        instances = [i for r in found for i in r["Instances"]]
        return instances[0] if instances else None

    def _machine(self, region: str, instance: Mapping[str, Any]) -> Machine:
        tags = _tags(instance)
        _, _, vm_id = tags.get(LABEL_NODE, "").rpartition(".")
        return Machine(
            provider_id=f"{region};{instance['InstanceId']}",
            state=_STATES.get(instance.get("State", {}).get("Name", ""), NodeState.UNKNOWN),
            private_ip=instance.get("PrivateIpAddress") or None,
            public_ip=instance.get("PublicIpAddress") or None,
            ssh_user=tags.get(LABEL_SSH_USER, "cloudadm"),
            infrastructure_id=tags.get(LABEL_INFRASTRUCTURE),
            vm_id=int(vm_id) if vm_id.isdigit() else None,
        )

    def _instance_id(self, provider_id: str) -> tuple[str, str]:
        """(region, instance) of a provider id; a spot request id becomes its instance."""
        region, resource = _split_id(provider_id, self.region)
        if resource.startswith("sir-"):
            with _errors(f"spot request {resource}"):
                instance = self._spot_instance(self.client(region), resource)
            if instance is None:
                raise NotFound(f"ec2: spot request {resource} has no instance yet")
            resource = instance
        return region, resource
