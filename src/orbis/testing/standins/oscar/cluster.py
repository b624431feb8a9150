"""One stand-in OSCAR cluster: its services, its MinIO (a moto S3 server), its jobs.

A file uploaded under a service's input path starts a job (the bucket is polled, as MinIO's
notification would). A cluster running `max_jobs` jobs is saturated: a service with replicas
then hands the job to them in priority order (an `oscar` replica: the other cluster's
`/job/<service>` with that service's token, read with the cluster credentials the FDL's
`clusters` gives; an `endpoint` replica: its URL with its headers), telling it which of this
cluster's storage providers holds the input, as OSCAR's delegated events do. The replica then
reads the input from, and writes its output to, the storage providers its own definition
names: the origin's MinIO, with the origin's credentials, for the output to come back.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from .jobs import Runner, run_job
from .schema import MinIOProvider, Service

log = logging.getLogger(__name__)

# MinIO endpoint -> (access key, secret key) of every stand-in cluster in this process: a
# storage provider with other credentials is refused (moto itself would take any)
KNOWN_MINIO: dict[str, tuple[str, str]] = {}


class StorageRefused(Exception):
    pass


@dataclass
class Record:
    """One job, as `GET /system/logs/<service>` lists it."""

    id: str
    service: str
    key: str
    state: str = "pending"  # pending, running, succeeded, failed, delegated
    where: str = ""  # the replica it went to
    output: list[str] = field(default_factory=list)
    message: str = ""


class Cluster:
    def __init__(self, cluster_id: str, minio_url: str, *, user: str = "oscar",
                 password: str | None = None, tokens: tuple[str, ...] = (),
                 max_jobs: int = 2, runner: Runner = run_job, minio_key: str | None = None,
                 minio_public: str | None = None) -> None:  # fmt: skip
        self.id = cluster_id
        self.runner = runner  # containers on the test host; processes inside an OSCAR node
        # the MinIO endpoint /system/config shows, when the cluster reaches it otherwise (a
        # node's moto on 127.0.0.1, seen from outside at the node's address); "{host}" is the
        # host name the config request was sent to
        self.minio_public = minio_public
        # another cluster's MinIO this process cannot vouch for (each local OSCAR node is a
        # process of its own): taken as named, its own keys are that MinIO's to check
        self.foreign_minio = minio_public is not None
        self.user = user
        self.password = password or secrets.token_hex(8)
        self.tokens = set(tokens)  # OIDC-like bearer tokens it accepts on /system
        self.max_jobs = max_jobs
        self.minio = MinIOProvider(endpoint=minio_url, access_key=f"minio-{cluster_id}",
                                   secret_key=minio_key or secrets.token_hex(12),
                                   verify=False)  # fmt: skip
        KNOWN_MINIO[minio_url] = (self.minio.access_key, self.minio.secret_key)
        self.services: dict[str, Service] = {}
        self.service_tokens: dict[str, str] = {}
        self.buckets: dict[str, set[str]] = {}  # service -> buckets it created
        self.seen: dict[str, set[str]] = {}  # service -> input keys already handled
        self.jobs: list[Record] = []
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, body): tests read them
        self.fail_status: int | None = None  # every /system request answers this, when set
        self.url = ""
        self.running = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        self._watcher.join(timeout=5)
        KNOWN_MINIO.pop(self.minio.endpoint, None)

    def config(self, host: str = "") -> dict[str, Any]:
        minio = self.minio.model_dump()
        if self.minio_public:
            minio["endpoint"] = self.minio_public.replace("{host}", host or "127.0.0.1")
        return {"name": self.id, "namespace": "oscar-svc", "minio_provider": minio,
                "services_namespace": "oscar-svc"}  # fmt: skip

    # -- storage ---------------------------------------------------------------------------
    def s3(self, provider: str, service: Service) -> Any:
        """A boto3 S3 client for a storage provider a service names (checked credentials)."""
        import boto3

        kind, _, sid = provider.partition(".")
        if kind != "minio":
            raise StorageRefused(f"the stand-in serves MinIO providers only, not '{kind}'")
        conf = self.minio if sid in ("", "default") else (
            (service.storage_providers.minio or {}).get(sid) if service.storage_providers
            else None)  # fmt: skip
        if conf is None:
            raise StorageRefused(f"storage provider '{provider}' is not defined")
        known = KNOWN_MINIO.get(conf.endpoint)
        checked = conf is self.minio or known is not None or not self.foreign_minio
        if checked and known != (conf.access_key, conf.secret_key):
            raise StorageRefused(f"MinIO {conf.endpoint} refused the credentials of {provider}")
        return boto3.client("s3", endpoint_url=conf.endpoint, region_name=conf.region,
                            aws_access_key_id=conf.access_key,
                            aws_secret_access_key=conf.secret_key)  # fmt: skip

    def add(self, service: Service) -> None:
        """Register a service and make its buckets on this cluster's MinIO."""
        made: set[str] = set()
        for item in (service.input or []) + (service.output or []):
            if item.storage_provider in ("minio", "minio.default"):
                bucket = item.bucket_path.split("/", 1)[0]
                client = self.s3("minio", service)
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket=bucket)
                made.add(bucket)
        with self.lock:
            self.services[service.name] = service
            self.service_tokens.setdefault(service.name, secrets.token_hex(16))
            self.buckets.setdefault(service.name, set()).update(made)
            self.seen.setdefault(service.name, set())

    def remove(self, name: str) -> None:
        """Forget a service; the buckets it made go with their objects."""
        with self.lock:
            service = self.services.pop(name)
            self.service_tokens.pop(name, None)
            buckets = self.buckets.pop(name, set())
            self.seen.pop(name, None)
        client = self.s3("minio", service)
        for bucket in buckets:
            try:
                for obj in client.list_objects_v2(Bucket=bucket).get("Contents", []):
                    client.delete_object(Bucket=bucket, Key=obj["Key"])
                client.delete_bucket(Bucket=bucket)
            except Exception as exc:  # noqa: BLE001 - a bucket already gone
                log.info("bucket %s: %s", bucket, exc)

    # -- jobs ------------------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.wait(0.4):
            with self.lock:
                services = list(self.services.values())
            for service in services:
                for item in service.input or []:
                    if item.storage_provider not in ("minio", "minio.default"):
                        continue  # OSCAR is notified by its own MinIO only
                    try:
                        self._poll(service, item.storage_provider, item.bucket_path)
                    except Exception as exc:  # noqa: BLE001 - a bucket being removed
                        log.info("watching %s: %s", service.name, exc)

    def _poll(self, service: Service, provider: str, path: str) -> None:
        bucket, _, prefix = path.partition("/")
        client = self.s3(provider, service)
        found = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        for obj in found:
            key = obj["Key"]
            with self.lock:
                seen = self.seen.get(service.name)
                if seen is None or key in seen:
                    continue
                seen.add(key)
            event = {"storage_provider": provider, "bucket": bucket, "key": key}
            threading.Thread(target=self.dispatch, args=(service.name, event),
                             daemon=True).start()  # fmt: skip

    def dispatch(self, name: str, event: dict[str, Any]) -> Record:
        """Run a job here, or delegate it when saturated and the service has replicas."""
        service = self.services[name]
        record = Record(secrets.token_hex(6), name, event["key"])
        with self.lock:
            self.jobs.append(record)
            saturated = self.running >= self.max_jobs
            if not saturated:
                self.running += 1
        if saturated and service.replicas:
            self._delegate(service, event, record)
            return record
        if saturated:  # no replica: wait for a slot, as a queued Kubernetes job would
            while True:
                with self.lock:
                    if self.running < max(self.max_jobs, 1):
                        self.running += 1
                        break
                time.sleep(0.2)
        try:
            self._run(service, event, record)
        finally:
            with self.lock:
                self.running -= 1
        return record

    def _run(self, service: Service, event: dict[str, Any], record: Record) -> None:
        record.state = "running"
        try:
            source = self.s3(event["storage_provider"], service)
            data = source.get_object(Bucket=event["bucket"], Key=event["key"])["Body"].read()
            env = service.environment.all_variables if service.environment else {}
            env.update((service.environment.secrets or {}) if service.environment else {})
            result = self.runner(self.id, service.image, service.script,
                             event["key"].rsplit("/", 1)[-1], data, env)  # fmt: skip
            if result.exit_code != 0:
                raise RuntimeError(f"script exited {result.exit_code}: {result.stdout[-300:]!r}")
            for item in service.output or []:
                bucket, _, prefix = item.bucket_path.partition("/")
                target = self.s3(item.storage_provider, service)
                for file_name, content in result.outputs.items():
                    if item.suffix and not any(file_name.endswith(s) for s in item.suffix):
                        continue
                    if item.prefix and not any(file_name.startswith(p) for p in item.prefix):
                        continue
                    key = f"{prefix}/{file_name}" if prefix else file_name
                    target.put_object(Bucket=bucket, Key=key, Body=content)
                    record.output.append(f"{item.storage_provider}:{bucket}/{key}")
            record.state = "succeeded"
        except Exception as exc:  # noqa: BLE001 - the job fails, the cluster goes on
            record.state, record.message = "failed", f"{type(exc).__name__}: {exc}"
            log.warning("job %s of %s failed: %s", record.id, service.name, record.message)

    def _delegate(self, service: Service, event: dict[str, Any], record: Record) -> None:
        # the replica reads the input through its own definition of this cluster's MinIO
        provider = event["storage_provider"]
        origin = f"minio.{self.id}" if provider in ("minio", "minio.default") else provider
        body = {**event, "storage_provider": origin, "origin_cluster": self.id}
        failures = []
        for replica in sorted(service.replicas or [], key=lambda r: r.priority):
            try:
                if replica.type == "oscar":
                    cluster = (service.clusters or {})[replica.cluster_id or ""]
                    auth = (cluster.auth_user or "", cluster.auth_password or "")
                    verify = bool(cluster.ssl_verify) if cluster.ssl_verify is not None else True
                    base = cluster.endpoint.rstrip("/")
                    with httpx.Client(verify=verify, timeout=30) as http:
                        answer = http.get(f"{base}/system/services/{replica.service_name}",
                                          auth=auth)  # fmt: skip
                        answer.raise_for_status()
                        token = answer.json()["token"]
                        http.post(f"{base}/job/{replica.service_name}", json=body,
                                  headers={"Authorization": f"Bearer {token}"}
                                  ).raise_for_status()  # fmt: skip
                    record.where = f"{replica.cluster_id}/{replica.service_name}"
                else:
                    with httpx.Client(verify=replica.ssl_verify is not False, timeout=30) as http:
                        http.post(replica.url or "", json=body,
                                  headers=replica.headers or {}).raise_for_status()  # fmt: skip
                    record.where = replica.url or ""
                record.state = "delegated"
                return
            except Exception as exc:  # noqa: BLE001 - next replica (OSCAR: priority order)
                failures.append(f"{type(exc).__name__}: {exc}")
        record.state, record.message = "failed", "every replica failed: " + "; ".join(failures)
