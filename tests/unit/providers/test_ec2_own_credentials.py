"""EC2 signs only with the keys of the user's auth line, never with the server's own AWS
credentials: the server's environment, ~/.aws files and profiles are all set here, each with a
key that appears nowhere else, and every request reaching moto is checked for who signed it."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from orbis.placement.sites import SiteRegistry
from orbis.providers.base import ProviderAuthError
from orbis.providers.ec2 import EC2Provider
from orbis.providers.sim import SimProvider
from orbis.testing.standins.moto import signing_keys_server

from .ec2_common import AUTH, FAST

ENV_KEY = "AKIASERVERENVIRONMENT"
FILE_KEY = "AKIASERVERCREDENTIALSFILE"
PROFILE_KEY = "AKIASERVERPROFILE"


@pytest.fixture
def server_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The server's own AWS credentials, every way boto3 would find them; returns the file a
    `credential_process` would write if botocore ever ran it."""
    ran = tmp_path / "credential_process_ran"
    process = tmp_path / "creds.sh"
    process.write_text(
        f'#!/bin/sh\ntouch {ran}\necho \'{{"Version": 1, "AccessKeyId": "{PROFILE_KEY}", '
        '"SecretAccessKey": "x"}\'\n'
    )
    process.chmod(process.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "credentials").write_text(
        f"[default]\naws_access_key_id = {FILE_KEY}\naws_secret_access_key = file-secret\n"
    )
    (tmp_path / "config").write_text(f"[profile server]\ncredential_process = {process}\n")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ENV_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "environment-secret")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path))
    return ran


@pytest.fixture
def signers(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    with signing_keys_server(endpoint) as (url, seen):
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        yield seen


NO_KEYS = {"id": "aws", "type": "EC2", "region": AUTH["region"]}


@pytest.mark.parametrize("profile", [None, "server"])
def test_line_without_keys_is_refused_and_nothing_is_signed_with_the_servers(
    server_credentials: Path, signers: list[str], monkeypatch: pytest.MonkeyPatch,
    profile: str | None,
) -> None:  # fmt: skip
    if profile:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.setenv("AWS_PROFILE", profile)
    with pytest.raises(ProviderAuthError, match="server's own AWS credentials are never used"):
        provider = EC2Provider(NO_KEYS, options=FAST)
        provider.client().describe_instances()  # reached only if the line was accepted
    assert signers == []
    assert not server_credentials.exists()


def test_line_with_only_an_access_key_is_refused(server_credentials: Path) -> None:
    with pytest.raises(ProviderAuthError, match="needs username"):
        EC2Provider({**NO_KEYS, "username": "AKIDEXAMPLE"}, options=FAST)


def test_every_request_is_signed_with_the_lines_keys(
    server_credentials: Path, signers: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "server")  # a profile the server has: still not used
    provider = EC2Provider(AUTH, options=FAST)
    provider.client().describe_instances()
    provider.client().describe_vpcs()
    assert signers and set(signers) == {AUTH["username"]}
    assert not server_credentials.exists()


def test_session_has_no_credential_chain_to_fall_back_on(server_credentials: Path) -> None:
    """Even a code path that asked the session for credentials would get none of the server's."""
    provider = EC2Provider(AUTH, options=FAST)
    core = provider._session._session  # botocore's session under boto3's
    assert core.get_component("credential_provider").load_credentials() is None
    assert core.get_credentials().access_key == AUTH["username"]
    assert not server_credentials.exists()


def test_sites_report_the_refusal_for_a_line_without_keys(
    server_credentials: Path, signers: list[str], tmp_path: Path
) -> None:
    registry = SiteRegistry(SimProvider(tmp_path / "sim.db"))
    (site,) = registry.sites_for([NO_KEYS])
    info = registry.info(site)
    assert "never used" in (info.error or "")
    assert signers == []
