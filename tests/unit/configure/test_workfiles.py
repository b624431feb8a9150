"""The work folder is shared with user recipes: a planted symlink or a '..' name never makes the
server write or read a file outside it."""

import asyncio
from pathlib import Path

import pytest

from orbis.configure import galaxy
from orbis.configure.artifacts import ArtifactError, ArtifactSettings, local_copy, node_path
from orbis.configure.workfiles import WorkFileError, make_folder, write_file
from orbis.runner.host import HostRunner


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "work" / "infra")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    target = tmp_path / "server-file"
    target.write_text("the server's own file\n")
    return target


def test_write_replaces_a_planted_link_and_leaves_its_target(work: Path, outside: Path) -> None:
    (work / "id_ed25519").symlink_to(outside)
    written = write_file(work, "id_ed25519", "PRIVATE KEY\n", 0o600)
    assert outside.read_text() == "the server's own file\n"
    assert not written.is_symlink() and written.read_text() == "PRIVATE KEY\n"
    assert written.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("name", ["..", "../id", "/etc/passwd", "a/b", "", "."])
def test_names_that_could_leave_the_folder_are_refused(work: Path, name: str) -> None:
    with pytest.raises(WorkFileError, match="not a plain file name"):
        write_file(work, name, "x")


def test_a_work_folder_that_is_a_link_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "infra").symlink_to(elsewhere)
    with pytest.raises(WorkFileError, match="symlinks refused"):
        write_file(tmp_path / "infra", "id_ed25519", "key")
    assert list(elsewhere.iterdir()) == []


def test_galaxy_refuses_a_planted_roles_link(work: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (work / "roles").symlink_to(elsewhere)
    with pytest.raises(galaxy.GalaxyError, match="symlinks refused"):
        asyncio.run(galaxy.install(HostRunner(work, tmp_path / "key"), ["geerlingguy.ntp"], []))


def test_a_mirror_symlink_out_of_its_folder_is_refused(tmp_path: Path, outside: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "play.yml").symlink_to(outside)
    settings = ArtifactSettings(cache_dir=tmp_path / "c", mapping=[("https://m/", mirror)])
    with pytest.raises(ArtifactError, match="escapes the mirror folder"):
        local_copy("https://m/play.yml", settings)
    with pytest.raises(ArtifactError, match="escapes the mirror folder"):
        local_copy("https://m/../server-file", settings)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://h/x/..", "/tmp/artifact"),
        ("https://h/x/.", "/tmp/x"),  # "." is dropped by the path
        ("https://h/", "/tmp/artifact"),
        ("https://h/a/tool.sh?x=1", "/tmp/tool.sh"),
    ],
)
def test_artifact_names_on_the_node_stay_in_tmp(url: str, path: str) -> None:
    assert node_path(url, "artifact") == path
