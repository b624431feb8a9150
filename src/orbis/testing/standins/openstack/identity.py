"""Keystone: password (v3 and v2.0), application-credential, token and OIDC-federated tokens,
whose catalog points every service back at the stand-in."""

from __future__ import annotations

import re
import uuid
from typing import Any

from orbis.testing.standins.openstack.common import (
    ACCESS_TOKEN,
    APPCRED_ID,
    DOMAIN,
    IDP,
    PASSWORD,
    PROTOCOL,
    USER,
    Reply,
    StandinState,
    _fill,
    _fixture,
)


class Identity(StandinState):
    def auth_line(self, kind: str = "3.x_password", **overrides: str) -> dict[str, str]:
        """An IM auth line (parsed) for this cloud; `overrides` replace or add fields."""
        line = {"id": "standin", "type": "OpenStack", "host": self.url, "auth_version": kind}
        if kind in ("3.x_password", "2.0_password"):
            line |= {"username": USER, "password": PASSWORD, "tenant": self.project["name"],
                     "domain": DOMAIN}  # fmt: skip
        elif kind == "3.x_appcred":
            line |= {"username": APPCRED_ID, "password": PASSWORD}
        elif kind == "3.x_oidc_access_token":
            line |= {"username": IDP, "tenant": PROTOCOL, "password": ACCESS_TOKEN}
        return line | overrides


    def _catalog(self, project_id: str) -> list[dict[str, Any]]:
        template = _fixture("keystone")["catalog_entry"]
        services = [("identity", "keystone", ""), ("compute", "nova", "/compute/v2.1"),
                    ("network", "neutron", "/network"), ("image", "glance", "/image"),
                    ("volumev3", "cinderv3", f"/volume/v3/{project_id}"),
                    ("reservation", "blazar", "/reservation/v1")]  # fmt: skip
        catalog = []
        for kind, name, path in services:
            entry = _fill(template, base=self.url)
            entry |= {"type": kind, "name": name, "id": f"s-{kind}"}
            url = self.catalog_urls.get(kind) or self.url + (path or "/v3")
            entry["endpoints"][0] |= {"url": url, "region": self.region,
                                      "region_id": self.region, "id": f"e-{kind}"}  # fmt: skip
            catalog.append(entry)
        return catalog

    def _issue(self, project: dict[str, Any] | None, methods: list[str]) -> tuple[int, Any]:
        token_id = uuid.uuid4().hex
        self.tokens[token_id] = project["id"] if project else None
        body = _fixture("keystone")["token"]
        body["token"]["methods"] = methods
        if project:
            body["token"]["project"] = {"id": project["id"], "name": project["name"],
                                        "domain": {"id": "default", "name": DOMAIN}}  # fmt: skip
            body["token"]["catalog"] = self._catalog(project["id"])
        raise Reply(201, body, {"X-Subject-Token": token_id})

    def _find_project(self, scope: dict[str, Any] | None) -> dict[str, Any] | None:
        wanted = (scope or {}).get("project") or {}
        for project in self.projects:
            if wanted.get("id") == project["id"] or wanted.get("name") == project["name"]:
                return project
        return None

    def _keystone(self, method: str, path: str, body: Any, headers: Any) -> tuple[int, Any]:
        refuse = Reply(401, _fixture("keystone")["unauthorized"])
        if method == "POST" and path == "/v2.0/tokens":
            creds = (body or {}).get("auth", {})
            password = creds.get("passwordCredentials", {})
            if self.refuse_auth or password != {"username": USER, "password": PASSWORD}:
                raise refuse
            project = self._find_project({"project": {"name": creds.get("tenantName"),
                                                      "id": creds.get("tenantId")}})  # fmt: skip
            if project is None:
                raise refuse
            token_id = uuid.uuid4().hex
            self.tokens[token_id] = project["id"]
            access = _fixture("keystone")["v2_access"]
            access["access"]["token"] |= {"id": token_id, "tenant": {
                "id": project["id"], "name": project["name"], "enabled": True}}
            access["access"]["serviceCatalog"] = [
                {"type": e["type"], "name": e["name"], "endpoints": [
                    {"region": self.region, "publicURL": e["endpoints"][0]["url"],
                     "internalURL": e["endpoints"][0]["url"], "id": e["id"]}]}
                for e in self._catalog(project["id"]) if e["type"] != "identity"]
            return 200, access
        fed = re.fullmatch(r"/v3/OS-FEDERATION/identity_providers/([^/]+)/protocols/([^/]+)/auth",
                           path)  # fmt: skip
        if fed and method in ("GET", "POST"):
            bearer = headers.get("Authorization", "")
            if self.refuse_auth or fed.groups() != (IDP, PROTOCOL) or \
                    bearer != f"Bearer {ACCESS_TOKEN}":  # fmt: skip
                raise refuse
            self._issue(None, ["mapped"])
        if method == "GET" and path == "/v3/auth/projects":
            if headers.get("X-Auth-Token") not in self.tokens:
                raise refuse
            return 200, {"projects": self.projects, "links": {"self": None, "next": None}}
        if method == "POST" and path == "/v3/auth/tokens":
            auth = (body or {}).get("auth", {})
            identity = auth.get("identity", {})
            methods = identity.get("methods", [])
            scope = auth.get("scope")
            if self.refuse_auth:
                raise refuse
            if methods == ["password"]:
                user = identity["password"]["user"]
                if (user.get("name"), user.get("password")) != (USER, PASSWORD):
                    raise refuse
                project = self._find_project(scope)
            elif methods == ["application_credential"]:
                cred = identity["application_credential"]
                if (cred.get("id"), cred.get("secret")) != (APPCRED_ID, PASSWORD):
                    raise refuse
                project = self.project  # an application credential carries its project
            elif methods == ["token"]:
                if identity["token"].get("id") not in self.tokens:
                    raise refuse
                project = self._find_project(scope)
            else:
                raise refuse
            if project is None:
                raise Reply(401, _fixture("keystone")["unauthorized"])
            self._issue(project, methods)
        raise Reply(404, {"error": {"code": 404, "message": f"{path} not found"}})

