"""A client of one OSCAR cluster's REST API: services CRUD, synchronous runs, the cluster config.

Plain httpx rather than oscar-python: the server must check every user-named endpoint against
the address rule before connecting (net/endpoints.py) and must not follow redirects to where the
rule was not applied, and oscar-python's requests calls follow redirects, look a service up
before every create (a race the engine does not need) and bring OIDC-agent and WebDAV
dependencies. The request shapes are oscar-python's and OSCAR's own: basic auth or a bearer
token on `/system/*`, the service's token on `/run/<name>` with the input base64-encoded.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import httpx

from orbis.net.endpoints import url_refusal
from orbis.net.guarded import guarded_httpx_transport

TIMEOUT = 30.0
RUN_TIMEOUT = 300.0
MAX_ANSWER = 16 * 2**20  # a run's answer is kept in memory: bounded


class OscarError(Exception):
    """OSCAR refused or failed a request; the message has its status and answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class OscarAuthError(OscarError):
    """401/403: the credentials were refused."""


class OscarNotFound(OscarError):
    """404: no such service."""


@dataclass(frozen=True)
class OscarTarget:
    """Where a cluster is and how to log in (basic auth, or a bearer token)."""

    endpoint: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    verify: bool = True
    cluster_id: str = ""
    # a hosted OSCAR at the address of the infrastructure's own machine (not a user's text):
    # the address rule for user-named endpoints does not apply
    own_node: bool = False

    def credential(self) -> dict[str, Any]:
        """IM's `credential` attribute of a function on this cluster."""
        if self.token:
            return {"token_type": "bearer", "token": self.token}
        return {"user": self.user or "oscar", "token_type": "password", "token": self.password}


class OscarClient:
    def __init__(self, target: OscarTarget, *, check_address: bool = True) -> None:
        self.target = target
        self.base = target.endpoint.rstrip("/")
        self.check_address = check_address and not target.own_node
        if self.check_address:
            refusal = url_refusal(self.base, "OSCAR endpoint")
            if refusal is not None:
                raise OscarError(refusal)
        if target.token:
            self.auth: dict[str, str] = {"Authorization": f"Bearer {target.token}"}
        elif target.user is not None:
            pair = f"{target.user}:{target.password or ''}".encode()
            self.auth = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        else:
            raise OscarError("OSCAR needs username and password, or a token")

    def _request(self, method: str, path: str, *, json: Any = None, content: bytes | None = None,
                 headers: dict[str, str] | None = None, timeout: float = TIMEOUT,
                 ok: tuple[int, ...] = (200,)) -> httpx.Response:  # fmt: skip
        url = f"{self.base}{path}"
        try:
            # checked again at each connect (net/guarded.py): a rebound name is refused
            transport = guarded_httpx_transport(self.target.verify) if self.check_address else None
            with httpx.Client(verify=self.target.verify, follow_redirects=False,
                              timeout=timeout, transport=transport) as http:  # fmt: skip
                response = http.request(method, url, json=json, content=content,
                                        headers={**self.auth, **(headers or {})})  # fmt: skip
        except httpx.HTTPError as exc:
            raise OscarError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if response.status_code in ok:
            return response
        text = response.text[:300].strip()
        message = f"{method} {path}: HTTP {response.status_code}: {text or response.reason_phrase}"
        if response.status_code in (401, 403):
            raise OscarAuthError(message, response.status_code)
        if response.status_code == 404:
            raise OscarNotFound(message, response.status_code)
        raise OscarError(message, response.status_code)

    # -- services --------------------------------------------------------------------------
    def create_service(self, service: dict[str, Any]) -> None:
        self._request("POST", "/system/services", json=service, ok=(201,))

    def update_service(self, service: dict[str, Any]) -> None:
        self._request("PUT", "/system/services", json=service, ok=(204, 200))

    def get_service(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self._request("GET", f"/system/services/{name}").json()
        return found

    def list_services(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._request("GET", "/system/services").json()
        return found

    def delete_service(self, name: str) -> bool:
        """True if it was there (404 is not an error: it is gone either way)."""
        try:
            self._request("DELETE", f"/system/services/{name}", ok=(204, 200))
        except OscarNotFound:
            return False
        return True

    def config(self) -> dict[str, Any]:
        found: dict[str, Any] = self._request("GET", "/system/config").json()
        return found

    # -- runs ------------------------------------------------------------------------------
    def run(self, name: str, data: bytes, *, timeout: float = RUN_TIMEOUT) -> bytes:
        """Run the service synchronously on `data`; its answer (the script's output)."""
        token = self.target.token or str(self.get_service(name).get("token") or "")
        response = self._request(
            "POST", f"/run/{name}", content=base64.b64encode(data), timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        return response.content[:MAX_ANSWER]

    def submit_job(self, name: str, event: dict[str, Any]) -> None:
        """Start an asynchronous job of the service (OSCAR's `/job/<name>`)."""
        token = self.target.token or str(self.get_service(name).get("token") or "")
        self._request("POST", f"/job/{name}", json=event, ok=(201, 200),
                      headers={"Authorization": f"Bearer {token}"})  # fmt: skip
