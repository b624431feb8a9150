"""Deploy-time artifacts: a loopback HTTP server, the cache, prefix mirrors, clear errors.
No traffic leaves 127.0.0.1."""

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orbis.configure.artifacts import (
    ArtifactError,
    ArtifactSettings,
    artifact_downloads,
    fetch,
    local_copy,
)
from orbis.model.infrastructure import Function
from orbis.net.addresses import parse_allow_list
from orbis.net.fetch import FetchPolicy

PLAYBOOK = "- hosts: all\n  tasks:\n    - debug: {msg: served}\n"


class _Handler(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).hits += 1
        if self.path == "/artifacts/play.yml":
            body = PLAYBOOK.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.hits = 0
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


LOOPBACK_ALLOWED = FetchPolicy(allow=parse_allow_list("127.0.0.1"))  # the test servers


def settings(tmp_path: Path, **kw: object) -> ArtifactSettings:
    return ArtifactSettings(
        cache_dir=tmp_path / "cache",
        timeout=2.0,
        policy=LOOPBACK_ALLOWED,
        **kw,  # type: ignore[arg-type]
    )


def test_fetch_then_cache_hit_without_the_server(server: str, tmp_path: Path) -> None:
    url = f"{server}/artifacts/play.yml"
    s = settings(tmp_path)
    assert fetch(url, s) == PLAYBOOK
    assert _Handler.hits == 1
    assert fetch(url, s) == PLAYBOOK and _Handler.hits == 1  # from the cache


def test_cache_survives_the_server_going_away(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/artifacts/play.yml"
    s = settings(tmp_path, ttl=0.0)  # always stale: a refetch is tried and fails
    from orbis.configure.artifacts import cache_path

    cache_path(url, s).parent.mkdir(parents=True)
    cache_path(url, s).write_text(PLAYBOOK)
    assert fetch(url, s) == PLAYBOOK  # stale copy beats nothing


def test_prefix_mapping_to_a_local_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "lrms").mkdir(parents=True)
    (mirror / "lrms" / "k8s.yml").write_text(PLAYBOOK)
    prefix = "https://raw.githubusercontent.com/grycap/tosca/main/artifacts/"
    monkeypatch.setenv("ORBIS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ORBIS_ARTIFACT_MAP", f"{prefix}={mirror}")
    assert fetch(prefix + "lrms/k8s.yml") == PLAYBOOK  # never touches the network
    with pytest.raises(ArtifactError, match="escapes the mirror"):
        local_copy(prefix + "../../etc/passwd")


def test_mapping_from_yaml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x.yml").write_text(PLAYBOOK)
    (home / "artifact-map.yaml").write_text(f"'https://example.org/a/': {tmp_path / 'm'}\n")
    monkeypatch.setenv("ORBIS_HOME", str(home))
    monkeypatch.delenv("ORBIS_ARTIFACT_MAP", raising=False)
    assert fetch("https://example.org/a/x.yml") == PLAYBOOK


def test_unreachable_and_missing_are_clear_errors(server: str, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"/nothing.yml could not be fetched: HTTP 404"):
        fetch(f"{server}/nothing.yml", settings(tmp_path))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/p.yml"
    with pytest.raises(ArtifactError, match=rf"artifact {url} could not be fetched: .+"):
        fetch(url, settings(tmp_path))


def test_get_artifact_inputs_become_download_tasks() -> None:
    fn = Function("get_artifact", ("tool", "installer", "https://example.org/bin/install.sh"))
    tasks, inputs = artifact_downloads({"path": fn, "other": 1})
    assert inputs == {"path": "/tmp/install.sh", "other": 1}
    assert tasks[0]["ansible.builtin.get_url"]["dest"] == "/tmp/install.sh"


def test_a_refused_url_never_falls_back_to_a_stale_copy(server: str, tmp_path: Path) -> None:
    from orbis.configure.artifacts import cache_path

    url = f"{server}/artifacts/play.yml"
    s = ArtifactSettings(cache_dir=tmp_path / "cache", ttl=0.0, policy=FetchPolicy())  # no allow
    cache_path(url, s).parent.mkdir(parents=True)
    cache_path(url, s).write_text(PLAYBOOK)
    with pytest.raises(ArtifactError, match=r"loopback address \(ORBIS_FETCH_ALLOW\)"):
        fetch(url, s)
    assert _Handler.hits == 0
