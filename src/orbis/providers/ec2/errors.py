"""EC2 and Route53 error codes as the typed errors of providers/base.py.

The code decides (EC2 sends some quota errors as 500s); the message is the cloud's own, never
the credentials. `_errors` wraps a block of boto calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import botocore.exceptions

from orbis.providers.base import (
    NotFound,
    ProviderAuthError,
    ProviderError,
    QuotaExceeded,
    Transient,
)

_AUTH = {
    "AuthFailure",
    "UnauthorizedOperation",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "OptInRequired",
    "Blocked",
    "AccessDenied",  # Route53
}


_QUOTA = {
    "InstanceLimitExceeded",
    "VcpuLimitExceeded",
    "InsufficientInstanceCapacity",
    "AddressLimitExceeded",
    "InsufficientAddressCapacity",
    "MaxSpotInstanceCountExceeded",
    "VolumeLimitExceeded",
    "VpcLimitExceeded",
    "SecurityGroupLimitExceeded",
    "InsufficientFreeAddressesInSubnet",
    "SpotMaxPriceTooLow",
    "SnapshotLimitExceeded",
    "PendingSnapshotLimitExceeded",
    "ResourceLimitExceeded",
    "TooManyHostedZones",  # Route53
    "LimitsExceeded",
}


_NOT_FOUND = (
    "InvalidAMIID.",
    "InvalidSubnetID.",
    "InvalidSubnet.",
    "InvalidVpcID.",
    "InvalidKeyPair.",
    "InvalidSnapshot.",
    "InvalidVolume.",
    "InvalidGroup.NotFound",
    "InvalidInstanceID.",
    "InvalidSpotInstanceRequestID.",
    "InvalidInstanceType",
    "NoSuchHostedZone",  # Route53
)


_TRANSIENT = {
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "Unavailable",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
    "PriorRequestNotComplete",  # Route53
}


_BOTO_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


_CONNECTION = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)


def error_class(code: str, status: int | None = None) -> type[ProviderError]:
    """The typed error for an EC2 error code (the code wins over the HTTP status: EC2 sends
    InsufficientInstanceCapacity as a 500, which is a quota, not a busy API)."""
    if code in _AUTH:
        return ProviderAuthError
    if code in _QUOTA:
        return QuotaExceeded
    if code.endswith(".InUse"):  # InvalidSnapshot.InUse: it exists, something still uses it
        return ProviderError
    if code.startswith(_NOT_FOUND):
        return NotFound
    if code in _TRANSIENT or (status or 0) >= 500:
        return Transient
    return ProviderError


def map_error(err: Exception, what: str) -> ProviderError:
    """A boto error as a typed error with the cloud's own message (never the credentials)."""
    if isinstance(err, botocore.exceptions.ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = str(error.get("Message") or code).rstrip(".")
        return error_class(code, status)(f"ec2: {what}: {message} ({code})")
    if isinstance(err, _CONNECTION):
        return Transient(f"ec2: {what}: EC2 endpoint unreachable ({type(err).__name__})")
    if isinstance(
        err, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
    ):
        return ProviderAuthError(f"ec2: {what}: no usable credentials (username/password)")
    return ProviderError(f"ec2: {what}: {err}")


@contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except ProviderError:
        raise
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
        raise map_error(err, what) from None


def _code(err: Exception) -> str:
    if isinstance(err, botocore.exceptions.ClientError):
        return str(err.response.get("Error", {}).get("Code", ""))
    return ""
