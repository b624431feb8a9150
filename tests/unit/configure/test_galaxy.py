"""Galaxy requirements install into the infrastructure's folder (from a local archive here:
the test never reaches a network)."""

import asyncio
import tarfile
from pathlib import Path

import pytest

from orbis.configure import galaxy


def role_archive(tmp_path: Path) -> Path:
    role = tmp_path / "src" / "hello_role"
    (role / "tasks").mkdir(parents=True)
    (role / "meta").mkdir()
    (role / "tasks" / "main.yml").write_text("- ansible.builtin.debug: {msg: hello}\n")
    (role / "meta" / "main.yml").write_text("galaxy_info: {author: orbis, description: test}\n")
    archive = tmp_path / "hello_role.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(role, arcname="hello_role")
    return archive


def test_roles_land_in_the_work_folder(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    archive = role_archive(tmp_path)
    asyncio.run(galaxy.install(work, [f"{archive},,hello_role"], []))
    assert (work / "roles" / "hello_role" / "tasks" / "main.yml").is_file()
    # a second time is a no-op, not an error
    asyncio.run(galaxy.install(work, [f"{archive},,hello_role"], []))


def test_a_missing_role_is_a_clear_error(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(galaxy.GalaxyError, match="role install failed"):
        asyncio.run(galaxy.install(work, [f"{tmp_path / 'nope.tar.gz'},,nope"], []))
