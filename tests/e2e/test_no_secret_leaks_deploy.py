"""After a SUCCESSFUL deploy on real containers with real Ansible, planted secrets (a cloud
password and an OIDC-looking token in a second auth line, ORBIS_SECRET_KEY) appear nowhere: not
in the server's log, in any API answer, in the events, nor in the raw database files; and the
database holds no private key in the clear ("PRIVATE KEY"). The unit tests do the same for a
failing cloud deploy (unit/api/test_no_secret_leaks.py) and an API-only create
(unit/api/test_secrets_at_rest.py)."""

from __future__ import annotations

import time

import httpx
import pytest

from orbis.testing.server import orbis_server

pytestmark = [pytest.mark.e2e]
PASSWORD = "planted-cloud-password-e2e-3b7d"
SERVER_SECRET = "planted-server-secret-e2e-9c41"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwbGFudGVkLWUyZSJ9.planted-signature-e2e-5a"
PLANTED = (PASSWORD, SERVER_SECRET, TOKEN)
# the node goes to the local back-end (the first cloud line); the OpenStack line is the user's
# second one, with the secrets in it (lines apart by a literal \n, as IM's header has them)
AUTH = ("id = im; type = InfrastructureManager; username = alice; password = pw-alice\\n"
        "id = loc; type = Local\\n"
        "id = ost; type = OpenStack; host = https://keystone.example.invalid:5000; "
        f"username = alice; password = {PASSWORD}; tenant = t; token = {TOKEN}")  # fmt: skip
TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    n:
      type: tosca.nodes.Compute
      interfaces:
        Standard:
          configure:
            implementation: |
              - hosts: all
                gather_facts: false
                tasks:
                  - copy: {content: "configured\\n", dest: /root/done}
  outputs:
    ip: {value: {get_attribute: [n, public_address, 0]}}
"""


def test_a_successful_deploy_leaks_no_secret(engine_url: str) -> None:
    env = {"ORBIS_SECRET_KEY": SERVER_SECRET, "ORBIS_LOG_LEVEL": "debug"}
    with orbis_server(engine_url, user="alice", env=env) as server:
        answers: list[str] = []
        with httpx.Client(base_url=server.url, headers={"Authorization": AUTH},
                          timeout=600) as client:  # fmt: skip
            made = client.post("/infrastructures", content=TEMPLATE,
                               headers={"Content-Type": "text/yaml"})  # fmt: skip
            assert made.status_code == 200, made.text
            infra = made.text.rsplit("/", 1)[-1]
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                state = client.get(f"/infrastructures/{infra}/state").json()["state"]["state"]
                if state in ("configured", "failed", "unconfigured"):
                    break
                time.sleep(2)
            assert state == "configured", client.get(f"/infrastructures/{infra}/contmsg").text
            contmsg = client.get(f"/infrastructures/{infra}/contmsg").text
            assert "ok=" in contmsg or "changed" in contmsg, contmsg  # Ansible's run is told
            for path in ("", "/state", "/contmsg", "/outputs", "/radl", "/tosca", "/data",
                         "/vms/0", "/vms/0/contmsg", "/authorization"):  # fmt: skip
                answer = client.get(f"/infrastructures/{infra}{path}")
                assert answer.status_code == 200, (path, answer.text)
                answers.append(answer.text)
            for path in ("", "/events", "/vms/0/login"):
                answers.append(client.get(f"/orbis/infrastructures/{infra}{path}").text)
            answers.append(client.get("/infrastructures").text)
            database = b"".join(p.read_bytes() for p in server.home.glob("orbis.db*"))
            assert infra.encode() in database  # the files the server writes to
            assert b"PRIVATE KEY" not in database  # the node's SSH key is sealed at rest
            destroyed = client.delete(f"/infrastructures/{infra}")
            assert destroyed.status_code == 200, destroyed.text
        logged = (server.home / "server.log").read_text()
    assert infra in logged  # the log of this server
    assert any("/root/done" in a or "ok=" in a for a in answers)
    for secret in PLANTED:
        assert secret not in logged, secret
        for text in answers:
            assert secret not in text, (secret, text[:2000])
        assert secret.encode() not in database, secret
