"""A local OIDC issuer for tests, on 127.0.0.1: discovery, JWKS, tokens it signs itself, an
authorization endpoint that signs in one fixed user at once (a redirect with a code), a token
endpoint that checks the code, client, redirect URI and PKCE verifier (S256) and honours the
refresh_token grant (rotating refresh tokens, as INDIGO IAM does), and an end-session endpoint
that records the logouts it was sent (RP-initiated logout)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class LocalIssuer:
    def __init__(self, client_id: str = "orbis-dashboard", subject: str = "alice-sub") -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.client_id = client_id
        self.subject = subject
        self.requests = 0  # GET requests served (discovery and keys are cached by their users)
        self.jwks_delay = 0.0  # seconds the JWKS answer takes (a slow issuer)
        self.access_ttl = 300  # lifetime of the access tokens the token endpoint issues
        self.extra: dict[str, Any] = {}  # more claims in the tokens the token endpoint issues
        self.codes: dict[str, dict[str, str]] = {}  # code → the authorization request
        self.refresh_tokens: set[str] = set()  # valid ones (each is used once)
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.logouts: list[dict[str, str]] = []
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                issuer.requests += 1
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._json(200, issuer.metadata())
                elif url.path == "/jwks":
                    time.sleep(issuer.jwks_delay)
                    jwk = json.loads(RSAAlgorithm.to_jwk(issuer.key.public_key()))
                    self._json(200, {"keys": [{**jwk, "kid": issuer.kid, "alg": "RS256",
                                               "use": "sig"}]})  # fmt: skip
                elif url.path == "/authorize":
                    issuer.authorize_requests.append(query)
                    code = secrets.token_urlsafe(16)
                    issuer.codes[code] = query
                    back = urlencode({"code": code, "state": query.get("state", "")})
                    self._redirect(f"{query['redirect_uri']}?{back}")
                elif url.path == "/logout":
                    issuer.logouts.append(query)
                    self._redirect(query.get("post_logout_redirect_uri") or issuer.url)
                else:
                    self.send_error(404)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                issuer.token_requests.append(form)
                status, body = issuer.grant(form)
                self._json(status, body)

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.end_headers()

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LocalIssuer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def metadata(self) -> dict[str, Any]:
        return {"issuer": self.url, "jwks_uri": self.url + "/jwks",
                "authorization_endpoint": self.url + "/authorize",
                "token_endpoint": self.url + "/token",
                "end_session_endpoint": self.url + "/logout"}  # fmt: skip

    def token(
        self, sub: str | None = None, ttl: float = 300, key: Any = None, **claims: Any
    ) -> str:
        """A signed access token (by this issuer's key unless `key`)."""
        now = int(time.time())
        payload = {"iss": self.url, "sub": sub or self.subject, "iat": now,
                   "exp": now + int(ttl), "jti": secrets.token_hex(8), **claims}  # fmt: skip
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": self.kid})

    def grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint's answer to an authorization_code or refresh_token grant."""
        if form.get("client_id") != self.client_id:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return 400, {"error": "invalid_grant", "error_description": "refresh token not "
                             "valid"}  # fmt: skip
            self.refresh_tokens.discard(form["refresh_token"])
            return 200, self._tokens()
        asked = self.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if (asked is None or form.get("redirect_uri") != asked["redirect_uri"]
                or asked.get("code_challenge_method") != "S256"
                or digest.decode().rstrip("=") != asked.get("code_challenge")):
            return 400, {"error": "invalid_grant",
                         "error_description": "code or PKCE verifier not valid"}  # fmt: skip
        return 200, self._tokens()

    def _tokens(self) -> dict[str, Any]:
        refresh = secrets.token_urlsafe(24)
        self.refresh_tokens.add(refresh)
        access = self.token(ttl=self.access_ttl, preferred_username="alice.oidc", **self.extra)
        return {"access_token": access, "token_type": "Bearer", "expires_in": self.access_ttl,
                "refresh_token": refresh}  # fmt: skip
