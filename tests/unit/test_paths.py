"""The one helper that turns an id into a path (orbis.paths), and the key file it guards."""

from __future__ import annotations

import os
import stat

import pytest

from orbis.engine.deployer import Deployer
from orbis.paths import UnsafeId, id_folder
from orbis.providers.sim import SimProvider
from orbis.store.repository import Store


@pytest.mark.parametrize(
    "bad", ["", ".", "..", "../x", "a/b", "/etc", "a\x00b", "a" * 37, "a.b", " a", "\\x", "é"]
)
def test_a_hostile_id_never_becomes_a_path(tmp_path, bad):
    with pytest.raises(UnsafeId):
        id_folder(tmp_path / "work", bad)


def test_a_symlink_planted_under_the_root_does_not_lead_out(tmp_path):
    root = tmp_path / "work"
    root.mkdir()
    (root / "abc").symlink_to(tmp_path)
    with pytest.raises(UnsafeId, match="outside"):
        id_folder(root, "abc")
    assert id_folder(root, "0f6c-ok_1") == (root / "0f6c-ok_1").resolve()


def test_destroy_of_an_infrastructure_with_a_hostile_id_removes_no_folder(tmp_path):
    home = tmp_path / "home"
    (home / "work").mkdir(parents=True)
    canary = home / "canary"
    canary.write_text("x")
    store = Store(f"sqlite:///{tmp_path / 'db'}")
    deployer = Deployer(store, SimProvider(tmp_path / "sim.db", 0, 0, 0), home / "work")
    with pytest.raises(UnsafeId):
        deployer.workdir("..")
    assert canary.exists()


def test_key_files_are_0600_in_0700_folders_even_under_a_loose_umask(tmp_path):
    old = os.umask(0)
    try:
        store = Store(f"sqlite:///{tmp_path / 'db'}")
        deployer = Deployer(store, SimProvider(tmp_path / "sim.db", 0, 0, 0), tmp_path / "work")
        (tmp_path / "work").mkdir(mode=0o777)
        infra = type("Row", (), {"id": "abc-1", "ssh_private_key": "SECRET"})()
        key = deployer.write_key(infra)
    finally:
        os.umask(old)
    assert key.read_text() == "SECRET"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "work").stat().st_mode) == 0o700
