"""IM's export through the API (issue 12 §3): `PUT /infrastructures` takes IM's `data`,
`GET .../data?format=im` writes it; a bad document is a 400 naming the field, never a 500; and
IM-client's own `import` (which PUTs the file as it is) moves an IM infrastructure to Orbis."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from orbis import config
from orbis.api.app import create_app
from orbis.testing.app_clients import NoMachines
from orbis.testing.im_export import RADL, TOSCA, cloud, infrastructure, rsa_key, vm, vm_info
from orbis.testing.server import free_port

from .conftest import ALICE, BOB

JSON = {"Content-Type": "application/json"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def im_data() -> str:
    key = rsa_key()
    dock = cloud("dock", "Docker")
    return infrastructure([
        vm(0, "front", "configured", "c0ffee01", dock,
           vm_info("front", "configured", key, public="172.17.0.5", private="10.0.0.5")),
        vm(1, "wn", "configured", "c0ffee02", dock,
           vm_info("wn", "configured", key, public=None, private="10.0.0.6")),
    ], radl=RADL, tosca=TOSCA)  # fmt: skip


def put(client: TestClient, data: str, auth: str = ALICE, **headers: str) -> tuple[int, str]:
    answer = client.put("/infrastructures", content=data,
                        headers={**JSON, "Authorization": auth, **headers})  # fmt: skip
    return answer.status_code, answer.text


def nodes(client: TestClient, infra_id: str) -> list[str]:
    out = []
    for n in ("0", "1"):
        answer = client.get(f"/infrastructures/{infra_id}/vms/{n}",
                            headers={"Authorization": ALICE})  # fmt: skip
        assert answer.status_code == 200, answer.text
        out.append(answer.text)
    return out


def test_ims_data_imports_and_writes_back_in_ims_form(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    status, text = put(client, im_data())
    assert status == 200, text
    infra_id = text.rsplit("/", 1)[-1]
    listed = client.get(f"/infrastructures/{infra_id}", headers={"Authorization": ALICE})
    assert listed.text.count("/vms/") == 2
    state = client.get(f"/infrastructures/{infra_id}/state", headers={"Authorization": ALICE})
    assert state.json()["state"]["vm_states"] == {"0": "configured", "1": "configured"}
    front, wn = nodes(client, infra_id)
    assert "net_interface.0.ip = '172.17.0.5'" in front and "system front" in front
    assert "10.0.0.6" in wn and "system wn" in wn
    # Bob cannot read it: the importer, not IM's owners, owns it
    assert client.get(f"/infrastructures/{infra_id}/data",
                      headers={"Authorization": BOB}).status_code == 403  # fmt: skip

    answer = client.get(f"/infrastructures/{infra_id}/data?format=im",
                        headers={"Authorization": ALICE})  # fmt: skip
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert isinstance(data, str) and "vm_list" in json.loads(data)
    status, text = put(client, data)
    assert status == 200, text
    again = text.rsplit("/", 1)[-1]
    assert again != infra_id
    strip = [re.sub(r"instance_name = '[^']*'", "", t) for t in nodes(client, again)]
    assert strip == [re.sub(r"instance_name = '[^']*'", "", t) for t in nodes(client, infra_id)]
    # Orbis's own form stays the default
    plain = client.get(f"/infrastructures/{infra_id}/data", headers={"Authorization": ALICE})
    assert json.loads(plain.json()["data"])["format"] == "orbis-export/1"


def test_a_node_imported_detached_refuses_actions_with_409(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    infra_id = put(client, im_data())[1].rsplit("/", 1)[-1]
    answer = client.put(f"/infrastructures/{infra_id}/vms/0/stop",
                        headers={"Authorization": ALICE})  # fmt: skip
    assert answer.status_code == 409 and "VM 0 is detached" in answer.text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"vm_list": "x", "radl": "system a ()"}', "vm_list: must be a list"),
        ('{"vm_list": [], "radl": ""}', "radl: missing"),
        ('{"vm_list": ["{}"], "radl": "system a ()"}', "vm_list[0].im_id: missing"),
        ('{"vm_list": ["{\\"im_id\\": 0}"], "radl": "system a ()"}', "vm_list[0].state"),
        ('{"vm_list": [{"im_id": 0, "state": "running", "cloud": {"type": "Docker"}}], '
         '"radl": "system a ()"}', "vm_list[0].info: missing"),
        ('{"vm_list": [], "extra_info": {"TOSCA": "tosca_definitions_version: nope"}}',
         "extra_info.TOSCA"),
        ('[1, 2]', "neither Orbis's export"),
    ],
)
def test_a_bad_im_document_is_a_400_naming_the_field(make_client, data: str,  # type: ignore[no-untyped-def]
                                                     message: str) -> None:  # fmt: skip
    status, text = put(make_client(), data, Accept="application/json")
    assert status == 400, text
    assert message in json.loads(text)["message"]


def test_an_unknown_export_format_is_a_400(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    infra_id = put(client, im_data())[1].rsplit("/", 1)[-1]
    answer = client.get(f"/infrastructures/{infra_id}/data?format=yaml",
                        headers={"Authorization": ALICE})  # fmt: skip
    assert answer.status_code == 400 and "unknown format 'yaml'" in answer.text


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[str]:
    """The API on 127.0.0.1 (a real HTTP server, for IM-client)."""
    settings = replace(config.load(), home=tmp_path, db_url=f"sqlite:///{tmp_path / 'db'}")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, NoMachines()), host="127.0.0.1",
                                           port=port, log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the API did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def im_client(tmp_path: Path) -> Callable[..., str]:
    found = shutil.which("im_client", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("IM-client is not installed (pip install -e '.[dev]')")
    auth = tmp_path / "auth.dat"
    auth.write_text(ALICE + "\n")

    def run(url: str, *args: str) -> str:
        done = subprocess.run([found, "-r", url, "-a", str(auth), *args], capture_output=True,
                              text=True, timeout=120, input="")  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    return run


def test_im_client_imports_ims_export_into_orbis(live_server: str, tmp_path: Path) -> None:
    """What an IM user does to move: `im_client export ID` on IM, `im_client import FILE` here
    (IM-client PUTs the file's text; its export prints the data JSON-quoted, also read)."""
    run = im_client(tmp_path)
    data_file = tmp_path / "infra.json"
    data_file.write_text(json.dumps(im_data()))  # as `im_client export` writes it
    imported = UUID.search(run(live_server, "import", str(data_file)))
    assert imported is not None
    infra_id = imported.group(0)
    assert "0d5a7e3c" not in infra_id
    assert re.search(r"infrastructure is in state: configured",
                     run(live_server, "getstate", infra_id))  # fmt: skip
    assert "172.17.0.5" in run(live_server, "getvminfo", infra_id, "0")
    # and IM-client's export of it reads back too (Orbis's form, which IM-client cannot choose)
    exported = run(live_server, "export", infra_id).strip().splitlines()[-1]
    data_file.write_text(exported)
    again = UUID.search(run(live_server, "import", str(data_file)))
    assert again is not None and again.group(0) != infra_id
