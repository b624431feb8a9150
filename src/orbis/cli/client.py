"""A small REST client for the Orbis server (IM-compatible routes plus /orbis/ views)."""

from __future__ import annotations

import getpass
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from orbis.auth import parse_auth_data, to_header


class ClientError(Exception):
    """The server refused a request or could not be reached; the message is for the user."""


def auth_file() -> Path:
    if os.environ.get("ORBIS_AUTH"):
        return Path(os.environ["ORBIS_AUTH"]).expanduser()
    return Path.home() / ".config" / "orbis" / "auth.dat"


def auth_header() -> str:
    """The Authorization header from the auth file; a personal one is made on first use."""
    path = auth_file()
    if not path.exists():
        if os.environ.get("ORBIS_AUTH"):
            raise ClientError(f"ORBIS_AUTH names {path}, which does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(
            f"id = orbis; type = InfrastructureManager; username = {getpass.getuser()}; "
            f"password = {secrets.token_urlsafe(18)}\n"
        )
    lines = parse_auth_data(path.read_text())
    if not lines:
        raise ClientError(f"{path} holds no auth lines")
    return to_header(lines)


class OrbisClient:
    def __init__(self, url: str | None = None, timeout: float = 60.0) -> None:
        self.url = (url or os.environ.get("ORBIS_URL") or "http://127.0.0.1:8800").rstrip("/")
        self.http = httpx.Client(
            base_url=self.url, timeout=timeout, headers={"Authorization": auth_header()}
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise ClientError(
                f"cannot reach the Orbis server at {self.url} "
                "(start it with `orbis server`, or set ORBIS_URL)"
            ) from None
        except httpx.HTTPError as exc:
            raise ClientError(f"{self.url}: {exc}") from None
        if response.status_code != 200:
            message = response.text.strip()
            if response.headers.get("content-type", "").startswith("application/json"):
                message = response.json().get("message", message)
            raise ClientError(message or f"HTTP {response.status_code}")
        return response

    def json(self, path: str, **kwargs: Any) -> Any:
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        return self.request("GET", path, headers=headers, **kwargs).json()

    def create(self, template: str, name: str, wait: bool = False) -> str:
        response = self.request(
            "POST",
            "/infrastructures",
            content=template.encode(),
            params={"async": "no" if wait else "yes"},
            headers={
                "Content-Type": "text/yaml",
                "Accept": "application/json",
                "X-Orbis-Template-Name": name,
            },
        )
        return str(response.json()["uri"]).rsplit("/", 1)[-1]

    def list(self) -> list[str]:
        data = self.json("/infrastructures")
        return [item["uri"].rsplit("/", 1)[-1] for item in data["uri-list"]]

    def detail(self, infra_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.json(f"/orbis/infrastructures/{infra_id}")
        return result

    def elastic(self, infra_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.json(f"/orbis/infrastructures/{infra_id}/elastic")
        return result

    def stream(self, infra_id: str) -> Iterator[dict[str, Any]]:
        """Each `detail` view from the server-sent-events stream, until the server ends it.

        Raises ClientError when the stream cannot be had (e.g. an older server): callers poll.
        """
        return self._sse(infra_id, "detail", {})

    def decisions(self, infra_id: str, after: int = 0) -> Iterator[dict[str, Any]]:
        """Each elastic decision (`elastic` event) of the stream after event `after`, as the
        monitor makes them, until the server ends the stream (the infrastructure is gone)."""
        return self._sse(infra_id, "elastic", {"follow": "1", "after": str(after)})

    def _sse(self, infra_id: str, kind_wanted: str, params: dict[str, str]
             ) -> Iterator[dict[str, Any]]:  # fmt: skip
        """The data of each `kind_wanted` event of the infrastructure's stream, until `end`."""
        path = f"/orbis/infrastructures/{infra_id}/stream"
        try:
            with self.http.stream("GET", path, params=params, timeout=None,
                                  headers={"Accept": "text/event-stream"}) as response:  # fmt: skip
                if response.status_code != 200:
                    raise ClientError(f"no event stream (HTTP {response.status_code})")
                kind = ""
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:") and kind == kind_wanted:
                        yield json.loads(line[5:])
                    elif line.startswith("data:") and kind == "end":
                        return
        except httpx.HTTPError as exc:
            raise ClientError(f"event stream interrupted: {exc}") from None

    def outputs(self, infra_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.json(f"/infrastructures/{infra_id}/outputs")["outputs"]
        return result

    def contmsg(self, infra_id: str, vm_id: int | None = None) -> str:
        path = f"/infrastructures/{infra_id}"
        path += f"/vms/{vm_id}/contmsg" if vm_id is not None else "/contmsg"
        return self.request("GET", path, headers={"Accept": "text/plain"}).text

    def destroy(self, infra_id: str) -> None:
        self.request("DELETE", f"/infrastructures/{infra_id}", timeout=600)
