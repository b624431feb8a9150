"""Galaxy requirements install into the infrastructure's runner folder (from a local archive
here: the test never reaches a network). These run ansible-galaxy through the host runner (the
single-user opt-in); tests/e2e/test_runner_isolation.py runs it in the runner container."""

import asyncio
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orbis.configure import galaxy
from orbis.runner.host import HostRunner
from orbis.testing.hostile_http import HostileServer, hostile_server


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


# --- Galaxy downloads obey the address rule of server-side fetches (net/proxy.py) ---------

CONNECTS: list[str] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.connect" and isinstance(args[1], tuple):
        CONNECTS.append(str(args[1][0]))


sys.addaudithook(_audit)


@pytest.fixture
def role_server(tmp_path: Path) -> Iterator[HostileServer]:
    with hostile_server() as server:
        server.files["hello.tar.gz"] = role_archive(tmp_path).read_bytes()
        yield server


def install(tmp_path: Path, roles: list[str]) -> Path:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    asyncio.run(galaxy.install(HostRunner(work, tmp_path / "key"), roles, []))
    return work


def test_a_role_url_on_loopback_is_refused_unfetched(tmp_path, role_server, monkeypatch):
    """Without the proxy ansible-galaxy would fetch it (the next test shows the same URL
    installs once the operator lists it)."""
    monkeypatch.delenv("ORBIS_FETCH_ALLOW", raising=False)
    with pytest.raises(galaxy.GalaxyError, match=r"127\.0\.0\.1 is a loopback address "
                                                 r"\(ORBIS_FETCH_ALLOW\)"):  # fmt: skip
        install(tmp_path, [f"{role_server.url}/files/hello.tar.gz,,hello_role"])
    assert role_server.hits == []
    assert not (tmp_path / "work" / "roles" / "hello_role").exists()
    assert not (tmp_path / "work" / galaxy.PROXY_SOCKET).exists()  # the proxy is gone


def test_an_allowed_role_url_installs_through_the_proxy(tmp_path, role_server, monkeypatch):
    monkeypatch.setenv("ORBIS_FETCH_ALLOW", f"127.0.0.1:{role_server.port}")
    work = install(tmp_path, [f"{role_server.url}/files/hello.tar.gz,,hello_role"])
    assert (work / "roles" / "hello_role" / "tasks" / "main.yml").is_file()
    assert [p for p, _ in role_server.hits] == ["/files/hello.tar.gz"]


def test_a_role_dependency_at_the_metadata_service_is_refused(tmp_path, role_server,
                                                             monkeypatch):  # fmt: skip
    """The role itself is allowed; its meta/main.yml names a dependency at 169.254.169.254,
    which a check of the template's names alone would never see."""
    role = tmp_path / "dep" / "needs_meta"
    (role / "tasks").mkdir(parents=True)
    (role / "meta").mkdir()
    (role / "tasks" / "main.yml").write_text("- ansible.builtin.debug: {msg: hi}\n")
    (role / "meta" / "main.yml").write_text(
        "galaxy_info: {author: x, description: y}\ndependencies:\n"
        "  - {src: 'http://169.254.169.254/latest/meta-data/role.tar.gz', name: meta_role}\n"
    )
    archive = tmp_path / "needs_meta.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(role, arcname="needs_meta")
    role_server.files["needs_meta.tar.gz"] = archive.read_bytes()
    monkeypatch.setenv("ORBIS_FETCH_ALLOW", f"127.0.0.1:{role_server.port}")
    CONNECTS.clear()
    with pytest.raises(galaxy.GalaxyError, match=r"169\.254\.169\.254 is the cloud metadata"):
        install(tmp_path, [f"{role_server.url}/files/needs_meta.tar.gz,,needs_meta"])
    assert "169.254.169.254" not in CONNECTS  # the proxy (this process) never connected


def test_an_https_role_url_on_loopback_is_refused_at_connect(tmp_path, role_server,
                                                            monkeypatch):  # fmt: skip
    monkeypatch.delenv("ORBIS_FETCH_ALLOW", raising=False)
    with pytest.raises(galaxy.GalaxyError, match=r"127\.0\.0\.1 is a loopback address"):
        install(tmp_path, [f"https://127.0.0.1:{role_server.port}/files/hello.tar.gz,,h"])
    assert role_server.hits == []


def test_downloads_past_the_cap_are_cut(tmp_path, role_server, monkeypatch):
    monkeypatch.setenv("ORBIS_FETCH_ALLOW", f"127.0.0.1:{role_server.port}")
    monkeypatch.setenv(galaxy.MAX_BYTES_SETTING, "1000")
    with pytest.raises(galaxy.GalaxyError, match=r"passed 1000 bytes \(ORBIS_GALAXY_MAX_BYTES\)"):
        install(tmp_path, [f"{role_server.url}/big?bytes=10000000,,big_role"])
    assert role_server.bytes_sent < 10_000_000


class CountingRunner(HostRunner):
    """The host runner, counting the commands it runs."""

    commands: list[list[str]]

    async def run(self, argv: list[str], env: dict[str, str], *, timeout: float,
                  tag: str) -> tuple[int, str]:  # fmt: skip
        self.commands = [*getattr(self, "commands", []), list(argv)]
        return await super().run(argv, env, timeout=timeout, tag=tag)


def test_galaxy_names_are_not_tried_when_the_server_does_not_resolve(tmp_path):
    """Offline, ansible-galaxy would retry the proxy's "Bad Gateway" for ~14 s per install
    (an INDIGO Compute names indigo-dc.os_users): names are not handed to it at all, an
    archive is still installed, and the error names what was left out and why."""
    work = tmp_path / "work"
    work.mkdir()
    runner = CountingRunner(work, tmp_path / "key")
    offline = "https://galaxy.invalid/"  # .invalid never resolves (RFC 2606)
    with pytest.raises(galaxy.GalaxyError, match=r"not installed: indigo-dc\.os_users, "
                       r"community\.general: the Galaxy server galaxy\.invalid cannot be "
                       r"reached"):  # fmt: skip
        asyncio.run(galaxy.install(runner, ["indigo-dc.os_users"], ["community.general"],
                                   server=offline))  # fmt: skip
    assert getattr(runner, "commands", []) == []  # ansible-galaxy never started
    archive = role_archive(tmp_path)
    with pytest.raises(galaxy.GalaxyError, match=r"not installed: grycap\.slurm,v1\.0:"):
        asyncio.run(galaxy.install(runner, [f"{archive},,hello_role", "grycap.slurm,v1.0"],
                                   [], server=offline))  # fmt: skip
    assert (work / "roles" / "hello_role" / "tasks" / "main.yml").is_file()
    (command,) = runner.commands  # the archive's install (through the proxy's relay)
    assert "ansible-galaxy" in command and "role" in command
    assert "grycap.slurm,v1.0" not in runner.commands[0]


def test_what_is_looked_up_on_the_galaxy_server():
    assert galaxy.from_server("indigo-dc.os_users")
    assert galaxy.from_server("grycap.slurm,v1.0")
    assert galaxy.from_server("community.general:>=7.0.0")
    assert not galaxy.from_server("/tmp/role.tar.gz,,hello")
    assert not galaxy.from_server("https://github.com/x/y/archive/main.tar.gz")
    assert not galaxy.from_server("role.tar.gz")
