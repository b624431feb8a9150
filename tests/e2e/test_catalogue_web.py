"""The curated catalogue on the local back-end: JupyterLab and the hello web page, on one VM each
(orbis.testing.catalogue deploys, checks nothing is left; docs/catalogue.md, docs/testing.md)."""

from __future__ import annotations

import httpx
import pytest

from orbis.testing.catalogue import CATALOGUE, deployed

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_jupyterlab_answers_on_its_login_page(server, engine_url, tmp_path):
    with deployed(
        server, engine_url, tmp_path, "vm.yaml", "--with", str(CATALOGUE / "jupyterlab.yaml"),
        "-i", "jupyterlab_token=e2e-token-1234",
    ) as infra:  # fmt: skip
        url = infra.outputs["jupyterlab_url"]
        base = url.rsplit("/", 1)[0]
        login = httpx.get(f"{base}/login", timeout=20)
        assert login.status_code == 200 and "Jupyter" in login.text
        api = httpx.get(f"{base}/api/status", params={"token": "e2e-token-1234"}, timeout=20)
        assert api.status_code == 200, api.text
        assert httpx.get(f"{base}/api/status", timeout=20).status_code == 403  # token needed


def test_hello_web_page_from_the_catalogue(server, engine_url, tmp_path):
    with deployed(
        server, engine_url, tmp_path, "vm.yaml", "--with", str(CATALOGUE / "hello_web.yaml"),
        "-i", "hello_greeting=Hi from the catalogue e2e",
    ) as infra:  # fmt: skip
        page = httpx.get(infra.outputs["hello_url"], timeout=10)
        assert page.status_code == 200
        assert "<h1>Hi from the catalogue e2e</h1>" in page.text
        assert infra.infra_id in page.text
