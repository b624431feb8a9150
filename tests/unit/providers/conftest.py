"""Fixtures of the EC2 provider tests: moto's real server (one per test module), boto3 sent to
it through its standard endpoint variable, and a Linux AMI with an EBS root disk."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orbis.testing.standins.moto import moto_server

from .ec2_common import raw


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def aws(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3 reaches moto through its standard endpoint variable (environment only)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", endpoint)
    return endpoint


@pytest.fixture(scope="module")
def ami(endpoint: str) -> str:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL_EC2", endpoint)
        images = raw().describe_images(Owners=["amazon"])["Images"]
    return str(
        next(
            i["ImageId"]
            for i in images
            if i.get("Platform") != "windows"
            and i["Architecture"] == "x86_64"
            and any(m.get("Ebs", {}).get("SnapshotId") for m in i["BlockDeviceMappings"])
        )
    )
