"""EGI FedCloud stand-in: the cloud-info API (is.cloud.egi.eu) and a minimal Keystone federation
endpoint, replaying the recorded answers in `egi_fixtures/`.

One ThreadingHTTPServer on 127.0.0.1 serves both: cloud-info at `/`, and the Keystone of a site
at `/keystone/<site>/v3/...` (the fixtures' `{standin}` placeholder becomes this server's URL).
Every request is recorded in `requests` (method, path with query), so tests can tell what the
client really sent; `fail_next(status)` makes the next answers fail (503, 429, ... "hang", or
"garbage": a 200 whose body is not JSON). Tests may edit `sites`, `images` and `keystone`;
entries without a name or id (as a broken catalogue has them) are answered as they are.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from orbis.testing.standins import allowed

FIXTURES = Path(__file__).with_name("egi_fixtures")
HANG_SECONDS = 1.0  # longer than the client timeouts used in the tests


def _load(name: str, base: str, host: str) -> Any:
    text = (FIXTURES / name).read_text()
    return json.loads(text.replace("{standin}", base).replace("{standin_host}", host))


class EgiStandin:
    """Use as a context manager: `with EgiStandin() as egi: CloudInfo(egi.url)`."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.standin = self  # type: ignore[attr-defined]
        host, port = "127.0.0.1", self._server.server_address[1]
        self.url = f"http://{host}:{port}"
        self.sites: list[dict[str, Any]] = _load("sites.json", self.url, host)["sites"]
        self.images: list[dict[str, Any]] = _load("images.json", self.url, host)["images"]
        self.keystone: dict[str, Any] = _load("keystone.json", self.url, host)["sites"]
        self.requests: list[tuple[str, str]] = []
        self._faults: list[int | str | None] = []  # None: answer that request normally
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> EgiStandin:
        self._thread.start()
        self._allowed = allowed(self.url.removeprefix("http://"))  # its sites' Keystone too
        self._allowed.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._allowed.__exit__(None, None, None)

    def fail_next(self, status: int | str, times: int = 1, after: int = 0) -> None:
        """The next `times` requests (once `after` more were answered) answer `status` (an
        HTTP code, "hang" to time out, or "garbage")."""
        with self._lock:
            self._faults.extend([None] * after + [status] * times)

    def paths(self) -> list[str]:
        with self._lock:
            return [path for _, path in self.requests]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def _record(self, method: str, path: str) -> int | str | None:
        with self._lock:
            self.requests.append((method, path))
            return self._faults.pop(0) if self._faults else None

    # -- cloud-info -----------------------------------------------------------------------
    def _site(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.sites if s.get("name") == name), None)

    @staticmethod
    def _public(site: dict[str, Any], projects: bool) -> dict[str, Any]:
        drop = {"vos"} if projects else {"vos", "projects"}
        return {k: v for k, v in site.items() if k not in drop}

    def cloud_info(self, parts: list[str], query: dict[str, str]) -> tuple[int, Any]:
        if parts == ["vos"]:
            return 200, sorted({vo for s in self.sites for vo in s["vos"]})
        if parts == ["sites"]:
            found = [s for s in self.sites
                     if query.get("vo_name", s["vos"][0]) in s["vos"]
                     and query.get("site_name", s.get("name")) == s.get("name")]  # fmt: skip
            with_projects = query.get("include_projects", "false").lower() == "true"
            return 200, [self._public(s, with_projects) for s in found]
        if parts == ["images"]:
            vo = query.get("vo_name")
            return 200, [self._image(i) for i in self.images if vo in (None, i["vo"])]
        if len(parts) < 2 or parts[0] != "site" or not (site := self._site(parts[1])):
            return 404, {"detail": "Not Found"}
        rest = parts[2:]
        if not rest:
            return 200, self._public(site, False)
        if rest == ["projects"]:
            return 200, site["projects"]
        if rest == ["images"]:
            return 200, [self._image(i) for i in self.images if i["site"] == site["name"]]
        if len(rest) == 2 and rest[0] in site["vos"]:
            vo = rest[0]
            if rest[1] == "images":
                return 200, [self._image(i) for i in self.images
                             if i["site"] == site["name"] and i["vo"] == vo]  # fmt: skip
            project = next((p for p in site["projects"] if p.get("name") == vo), None)
            if rest[1] == "project" and project:
                return 200, project
        return 404, {"detail": "Not Found"}

    @staticmethod
    def _image(image: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in image.items() if k != "site"}

    # -- Keystone federation ---------------------------------------------------------------
    def keystone_call(
        self, site: str, parts: list[str], headers: Any, method: str
    ) -> tuple[int, Any, dict[str, str]]:
        conf = self.keystone.get(site)
        if conf is None:
            return 404, {"error": {"code": 404, "message": "no such site"}}, {}
        auth_path = ["OS-FEDERATION", "identity_providers", conf["identity_provider"], "protocols"]
        if method == "POST" and parts[:4] == auth_path and parts[5:] == ["auth"]:
            if parts[4] not in conf["protocols"]:
                return 404, {"error": {"code": 404, "message": "protocol not found"}}, {}
            token = (headers.get("Authorization") or "").removeprefix("Bearer ").strip()
            if token not in conf["access_tokens"]:
                error = dict(conf["unauthorized"]["error"])  # echoes the token, as some do
                error["message"] = error["message"].replace("{token}", token)
                return 401, {"error": error}, {}
            subject = f"unscoped-{site}-{len(self.requests)}"
            conf.setdefault("_issued", []).append(subject)
            return (
                201,
                {"token": {"methods": ["mapped"], "expires_at": "2099-01-01T00:00:00Z"}},
                {"X-Subject-Token": subject},
            )
        if method == "GET" and parts == ["auth", "projects"]:
            if headers.get("X-Auth-Token") not in conf.get("_issued", []):
                return 401, {"error": {"code": 401, "message": "bad X-Auth-Token"}}, {}
            return 200, {"projects": conf["projects"], "links": {"self": None}}, {}
        return 404, {"error": {"code": 404, "message": "not found"}}, {}


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read `requests`
        pass

    def _serve(self, method: str) -> None:
        egi: EgiStandin = self.server.standin  # type: ignore[attr-defined]
        fault = egi._record(method, self.path)
        if fault == "hang":
            time.sleep(HANG_SECONDS)
            fault = 504
        if isinstance(fault, int):
            return self._answer(fault, {"detail": "stand-in fault"})
        if fault == "garbage":  # a proxy's error page, say
            return self._answer(200, None, raw=b"<html>Bad Gateway</html>")
        if int(self.headers.get("Content-Length") or 0):
            self.rfile.read(int(self.headers["Content-Length"]))
        split = urlsplit(self.path)
        parts = [unquote(p) for p in split.path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        if parts[:1] == ["keystone"] and parts[2:3] == ["v3"]:
            status, body, headers = egi.keystone_call(parts[1], parts[3:], self.headers, method)
            return self._answer(status, body, headers)
        if method != "GET":
            return self._answer(405, {"detail": "Method Not Allowed"})
        status, body = egi.cloud_info(parts, query)
        self._answer(status, body)

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None,
                raw: bytes | None = None) -> None:  # fmt: skip
        data = json.dumps(body).encode() if raw is None else raw
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")
