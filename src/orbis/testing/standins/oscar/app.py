"""The stand-in's REST API: OSCAR's routes, answers and status codes."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import threading
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ValidationError

from .cluster import Cluster, StorageRefused
from .schema import Service


def _basic(header: str) -> tuple[str, str] | None:
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def build_app(cluster: Cluster) -> FastAPI:
    app = FastAPI(title=f"OSCAR stand-in {cluster.id}")

    def system_auth(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        pair = _basic(header)
        if pair is not None:
            return hmac.compare_digest(pair[0], cluster.user) and hmac.compare_digest(
                pair[1], cluster.password)  # fmt: skip
        return header.startswith("Bearer ") and header[7:] in cluster.tokens

    def service_auth(request: Request, name: str) -> bool:
        header = request.headers.get("authorization", "")
        token = cluster.service_tokens.get(name)
        return header.startswith("Bearer ") and (
            (token is not None and hmac.compare_digest(header[7:], token))
            or header[7:] in cluster.tokens)  # fmt: skip

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Response:
        body = await request.body()
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = body[:200]
        cluster.requests.append((request.method, request.url.path, parsed))
        if cluster.fail_status and request.url.path.startswith("/system"):
            return PlainTextResponse(f"stand-in told to fail with {cluster.fail_status}",
                                     status_code=cluster.fail_status)  # fmt: skip
        if request.url.path.startswith("/system") and not system_auth(request):
            return PlainTextResponse("Unauthorized", status_code=401,
                                     headers={"WWW-Authenticate": 'Basic realm="OSCAR"'})
        return await call_next(request)

    def parse(body: bytes) -> Service | Response:
        try:
            return Service.model_validate_json(body)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                 for e in exc.errors())  # fmt: skip
            return PlainTextResponse(f"invalid service definition: {problems}", status_code=400)

    def shown(service: Service) -> dict[str, Any]:
        found = service.model_dump(exclude_none=True)
        found["token"] = cluster.service_tokens.get(service.name, "")
        return found

    @app.get("/health")
    def health() -> PlainTextResponse:
        return PlainTextResponse("Ok")

    @app.get("/system/config")
    def config(request: Request) -> dict[str, Any]:
        return cluster.config(request.url.hostname or "")

    @app.get("/system/info")
    def info() -> dict[str, Any]:
        return {"version": "stand-in", "name": cluster.id}

    @app.get("/system/services")
    def list_services() -> list[dict[str, Any]]:
        return [shown(s) for s in cluster.services.values()]

    @app.post("/system/services")
    async def create(request: Request) -> Response:
        service = parse(await request.body())
        if isinstance(service, Response):
            return service
        if service.name in cluster.services:
            return PlainTextResponse(f"service {service.name} already exists", status_code=409)
        try:
            cluster.add(service)
        except StorageRefused as exc:
            return PlainTextResponse(str(exc), status_code=400)
        return Response(status_code=201)

    @app.put("/system/services")
    async def update(request: Request) -> Response:
        service = parse(await request.body())
        if isinstance(service, Response):
            return service
        if service.name not in cluster.services:
            return PlainTextResponse(f"service {service.name} not found", status_code=404)
        try:
            cluster.add(service)
        except StorageRefused as exc:
            return PlainTextResponse(str(exc), status_code=400)
        return Response(status_code=204)

    @app.get("/system/services/{name}")
    def get(name: str) -> Response:
        service = cluster.services.get(name)
        if service is None:
            return PlainTextResponse(f"service {name} not found", status_code=404)
        return JSONResponse(shown(service))

    @app.delete("/system/services/{name}")
    def delete(name: str) -> Response:
        if name not in cluster.services:
            return PlainTextResponse(f"service {name} not found", status_code=404)
        cluster.remove(name)
        return Response(status_code=204)

    @app.get("/system/logs/{name}")
    def jobs(name: str) -> dict[str, Any]:
        return {job.id: {"status": job.state, "key": job.key, "delegated_to": job.where,
                         "output": job.output, "message": job.message}
                for job in cluster.jobs if job.service == name}  # fmt: skip

    @app.post("/run/{name}")
    async def run(name: str, request: Request) -> Response:
        service = cluster.services.get(name)
        if service is None:
            return PlainTextResponse(f"service {name} not found", status_code=404)
        if not service_auth(request, name):
            return PlainTextResponse("Unauthorized", status_code=401)
        try:
            data = base64.b64decode(await request.body(), validate=True)
        except binascii.Error:
            return PlainTextResponse("the input must be base64", status_code=400)
        env = service.environment.all_variables if service.environment else {}
        result = await asyncio.to_thread(cluster.runner, cluster.id, service.image,
                                         service.script, "input", data, env)  # fmt: skip
        status = 200 if result.exit_code == 0 else 500
        return Response(result.stdout, status_code=status, media_type="text/plain")

    @app.post("/job/{name}")
    async def job(name: str, request: Request) -> Response:
        if name not in cluster.services:
            return PlainTextResponse(f"service {name} not found", status_code=404)
        if not service_auth(request, name):
            return PlainTextResponse("Unauthorized", status_code=401)
        try:
            event = json.loads(await request.body())
            event = {"storage_provider": str(event["storage_provider"]),
                     "bucket": str(event["bucket"]), "key": str(event["key"])}  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return PlainTextResponse("the event needs storage_provider, bucket and key",
                                     status_code=400)  # fmt: skip
        threading.Thread(target=cluster.dispatch, args=(name, event), daemon=True).start()
        return Response(status_code=201)

    return app
