"""Galaxy requirements install into the infrastructure's runner folder (from a local archive
here: the test never reaches a network). These run ansible-galaxy through the host runner (the
single-user opt-in); tests/e2e/test_runner_isolation.py runs it in the runner container."""

import asyncio
import tarfile
from pathlib import Path

import pytest

from orbis.configure import galaxy
from orbis.runner.host import HostRunner


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
    runner = HostRunner(work, tmp_path / "key")
    asyncio.run(galaxy.install(runner, [f"{archive},,hello_role"], []))
    assert (work / "roles" / "hello_role" / "tasks" / "main.yml").is_file()
    # a second time is a no-op, not an error
    asyncio.run(galaxy.install(runner, [f"{archive},,hello_role"], []))


def test_a_missing_role_is_a_clear_error(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(galaxy.GalaxyError, match="role install failed"):
        asyncio.run(galaxy.install(HostRunner(work, tmp_path / "key"),
                                   [f"{tmp_path / 'nope.tar.gz'},,nope"], []))  # fmt: skip


def test_a_name_is_never_read_as_an_option(tmp_path):
    """`--` ends ansible-galaxy's options: a template's role named "-p<dir>" is a (missing)
    role, not a change of the folder roles go to."""
    work = tmp_path / "work"
    work.mkdir()
    elsewhere = tmp_path / "elsewhere"
    archive = role_archive(tmp_path)
    roles = [f"-p{elsewhere}", f"{archive},,hello_role"]
    assert galaxy.commands("/w", roles, ["x.y"])[0][-3] == "--"
    with pytest.raises(galaxy.GalaxyError):
        asyncio.run(galaxy.install(HostRunner(work, tmp_path / "key"), roles, []))
    assert not elsewhere.exists()
    assert (work / "roles" / "hello_role").is_dir()
