"""What the EC2 provider tests share: moto's region, credentials and fast timeouts, a plain boto3
client to look at what the provider did, and a provider for one installation. The moto server,
the endpoint variable and a Linux AMI are fixtures in conftest.py."""

from __future__ import annotations

from typing import Any

import boto3

from orbis.providers.ec2 import EC2Provider

GB = 1024**3
REGION = "eu-west-1"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AUTH = {
    "id": "aws",
    "type": "EC2",
    "username": "AKIDEXAMPLE",
    "password": SECRET,
    "token": "session-token",
    "region": REGION,
}
FAST = {"poll_interval": 0.01, "launch_timeout": 5, "cleanup_timeout": 5, "max_attempts": 1}
KEY = "ssh-rsa " + "A" * 300 + " orbis@test"


def raw(region: str = REGION) -> Any:
    """A plain boto3 client, to look at what the provider did."""
    return boto3.client("ec2", region_name=region, aws_access_key_id="x", aws_secret_access_key="y")


def make_provider(installation: str) -> EC2Provider:
    p = EC2Provider(AUTH, options=FAST)
    p.installation = installation
    return p
