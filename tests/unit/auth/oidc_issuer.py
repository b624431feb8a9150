"""A local OIDC issuer for tests: serves discovery and JWKS on 127.0.0.1, signs its own JWTs."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class LocalIssuer:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.requests = 0
        self.jwks_delay = 0.0  # seconds the JWKS answer takes (a slow issuer)
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                issuer.requests += 1
                if self.path == "/.well-known/openid-configuration":
                    body: Any = {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks"}
                elif self.path == "/jwks":
                    time.sleep(issuer.jwks_delay)
                    jwk = json.loads(RSAAlgorithm.to_jwk(issuer.key.public_key()))
                    body = {"keys": [{**jwk, "kid": issuer.kid, "alg": "RS256", "use": "sig"}]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
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

    def token(
        self, sub: str = "alice-sub", ttl: float = 300, key: Any = None, **claims: Any
    ) -> str:
        now = int(time.time())
        payload = {"iss": self.url, "sub": sub, "iat": now, "exp": now + int(ttl), **claims}
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": self.kid})
