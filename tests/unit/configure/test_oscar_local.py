"""The local back-end's OSCAR node: the stand-in replaces only the OSCAR type's own recipe, is
shipped whole in the plays, and a hosted function is called at its machine's own address
without the user-endpoint address rule, and never at another's (detached) machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from orbis.configure import oscar_local
from orbis.engine.function_places import hosted_target, node_endpoint, site_place
from orbis.lang import load_template
from orbis.model.infrastructure import Template
from orbis.model.states import NodeState
from orbis.providers.oscar import FdlError, OscarClient, OscarError, OscarTarget
from orbis.store.schema import NodeRow

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def example() -> Template:
    return load_template(REPO / "examples" / "functions.yaml")


def machine(**fields: object) -> NodeRow:
    values: dict[str, object] = {"infrastructure_id": "i", "vm_id": 0, "name": "oscar_front",
                                 "state": NodeState.CONFIGURED, "private_ip": "10.89.0.7",
                                 "deleted": False, "adoption": ""}  # fmt: skip
    values.update(fields)
    return NodeRow(**values)


def test_only_the_oscar_types_own_configure_is_replaced(example: Template) -> None:
    oscar = example.components["oscar"]
    [configure] = [op for op in oscar.operations if op.name == "configure"]
    assert configure.inherited and oscar_local.replaces(oscar, configure)
    mine = type(configure)("configure", inline="- hosts: all\n  tasks: []\n", inherited=False)
    assert not oscar_local.replaces(oscar, mine)  # a template's own recipe runs as written
    assert "grycap.kubeoscar" in oscar_local.galaxy_roles(oscar)


def test_the_plays_ship_the_stand_in_whole_and_self_contained() -> None:
    import base64
    import io
    import zipfile

    [play] = oscar_local.plays()
    copies = {t["ansible.builtin.copy"]["dest"]: t["ansible.builtin.copy"]["content"]
              for t in play["tasks"] if "ansible.builtin.copy" in t}  # fmt: skip
    code = base64.b64decode(copies[f"{oscar_local.HOME}/lib/oscar_standin.zip.b64"])
    with zipfile.ZipFile(io.BytesIO(code)) as archive:
        names = set(archive.namelist())
        texts = [archive.read(n).decode() for n in names]
    assert names == {f"oscar_standin/{n}" for n in (*oscar_local.MODULES, "__init__.py")}
    assert not any("from orbis" in text for text in texts)  # the node has no Orbis
    assert oscar_local.standin_zip() == code  # the same code makes the same bytes
    assert "{{ oscar_password }}" in copies[f"{oscar_local.HOME}/etc/password"]
    unit = copies["/etc/systemd/system/orbis-oscar.service"]
    assert f"User={oscar_local.USER}" in unit and "--password-file" in unit
    [install] = [t for t in play["tasks"] if t.get("async")]
    assert "--no-deps" in install["ansible.builtin.shell"]
    assert all(f"'{p}'" in install["ansible.builtin.shell"] or p in install[
        "ansible.builtin.shell"] for p in oscar_local.PACKAGES)


def test_a_hosted_function_is_called_at_its_machines_own_address(example: Template) -> None:
    nodes = [machine()]
    target = hosted_target(example, "oscar", nodes)
    assert (target.endpoint, target.own_node) == ("http://10.89.0.7", True)
    OscarClient(target)  # a private address, but the infrastructure's own machine: allowed
    with pytest.raises(OscarError, match="OSCAR endpoint"):
        OscarClient(OscarTarget("http://10.89.0.7", "oscar", "p"))  # a user's: refused
    again = site_place("node:oscar", "http://10.89.0.7", example, [], nodes).oscar
    assert again is not None and again.own_node
    # an endpoint that is not the machine's address (an old dns_host) keeps the rule
    other = site_place("node:oscar", "http://10.0.0.5", example, [], nodes).oscar
    assert other is not None and not other.own_node
    assert not node_endpoint(example, "oscar", "http://10.89.0.7", [machine(deleted=True)])


def test_a_detached_machine_is_never_called(example: Template) -> None:
    nodes = [machine(adoption="detached")]
    with pytest.raises(FdlError, match="is detached"):
        hosted_target(example, "oscar", nodes)
    assert not node_endpoint(example, "oscar", "http://10.89.0.7", nodes)


def test_a_node_stand_in_takes_another_nodes_minio_but_checks_its_own() -> None:
    """Each local OSCAR node's stand-in is a process of its own: a replica's storage naming
    another node's MinIO cannot be vouched for there (that MinIO checks its keys); its own
    MinIO's keys are checked. On the test host every cluster's keys are known: checked."""
    from orbis.testing.standins.oscar import Cluster
    from orbis.testing.standins.oscar.cluster import StorageRefused
    from orbis.testing.standins.oscar.schema import Service

    def service(endpoint: str, secret: str, access: str = "minio-a") -> Service:
        return Service.model_validate({
            "name": "s", "image": "i", "script": "echo",
            "storage_providers": {"minio": {"a": {"endpoint": endpoint, "access_key": access,
                                                  "secret_key": secret}}}})  # fmt: skip

    node = Cluster("b", "http://127.0.0.1:9", minio_public="http://{host}:9")
    host = Cluster("c", "http://127.0.0.1:8")
    try:
        assert node.s3("minio.a", service("http://10.89.0.9:9000", "k")) is not None
        with pytest.raises(StorageRefused, match="refused the credentials"):
            node.s3("minio.a", service("http://127.0.0.1:9", "not-its-key"))
        assert node.s3("minio.a", service("http://127.0.0.1:9", node.minio.secret_key,
                                          node.minio.access_key))  # fmt: skip
        with pytest.raises(StorageRefused, match="refused the credentials"):
            host.s3("minio.a", service("http://10.89.0.9:9000", "k"))
    finally:
        node.close()
        host.close()
