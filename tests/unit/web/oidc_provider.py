"""A small OIDC provider for the dashboard's sign-in tests, on 127.0.0.1: discovery, JWKS, an
authorization endpoint that signs in one fixed user at once (a redirect with a code), and a
token endpoint that checks the code, client, redirect URI and the PKCE verifier (S256)."""

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


class Provider:
    def __init__(self, client_id: str = "orbis-dashboard", subject: str = "alice-sub") -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.client_id = client_id
        self.subject = subject
        self.codes: dict[str, dict[str, str]] = {}  # code → the authorization request
        self.authorize_requests: list[dict[str, str]] = []
        self.extra: dict[str, Any] = {}  # more claims in the tokens it issues
        self.token_requests: list[dict[str, str]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlsplit(self.path)
                if url.path == "/.well-known/openid-configuration":
                    self._json(200, {"issuer": provider.url,
                                     "authorization_endpoint": provider.url + "/authorize",
                                     "token_endpoint": provider.url + "/token",
                                     "jwks_uri": provider.url + "/jwks"})
                elif url.path == "/jwks":
                    jwk = json.loads(RSAAlgorithm.to_jwk(provider.key.public_key()))
                    self._json(200, {"keys": [{**jwk, "kid": "k1", "alg": "RS256"}]})
                elif url.path == "/authorize":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    provider.authorize_requests.append(query)
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = query
                    back = urlencode({"code": code, "state": query.get("state", "")})
                    self.send_response(302)
                    self.send_header("Location", f"{query['redirect_uri']}?{back}")
                    self.end_headers()
                else:
                    self.send_error(404)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                provider.token_requests.append(form)
                asked = provider.codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "")
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                if (asked is None or form.get("client_id") != provider.client_id
                        or form.get("redirect_uri") != asked["redirect_uri"]
                        or asked.get("code_challenge_method") != "S256"
                        or digest.decode().rstrip("=") != asked.get("code_challenge")):
                    self._json(400, {"error": "invalid_grant",
                                     "error_description": "code or PKCE verifier not valid"})
                    return
                self._json(200, {"access_token": provider.token(), "token_type": "Bearer"})

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

    def token(self, ttl: int = 300) -> str:
        now = int(time.time())
        claims = {"iss": self.url, "sub": self.subject, "iat": now, "exp": now + ttl,
                  "preferred_username": "alice.oidc", **self.extra}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})

    def __enter__(self) -> Provider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
