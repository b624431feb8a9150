"""OIDC tokens against a local issuer (discovery + JWKS served on 127.0.0.1 by the test)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from orbis.auth import OPENID_PREFIX, Authenticator, AuthError
from orbis.testing.standins.oidc import LocalIssuer


@pytest.fixture(scope="module")
def issuer():
    with LocalIssuer() as running:
        yield running


def test_valid_token_is_an_openid_identity(issuer):
    auth = Authenticator([issuer.url])
    who = auth.identify(f"Bearer {issuer.token('s-1')}")
    assert who.name == OPENID_PREFIX + "s-1"
    # the same subject in an IM line with token = ... is the same identity
    again = auth.identify(f"type = InfrastructureManager; token = {issuer.token('s-1', ttl=600)}")
    assert again.key == who.key
    # a local user who picks the same name is not
    with pytest.raises(AuthError, match="reserved"):
        auth.identify(f"type = InfrastructureManager; username = {who.name}; password = x")


def test_keys_are_fetched_once_and_cached(issuer):
    auth = Authenticator([issuer.url])
    before = issuer.requests
    for n in range(5):
        auth.identify(f"Bearer {issuer.token(f'cache-{n}')}")
    assert issuer.requests - before == 2  # discovery + JWKS


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("expired", "expired"),
        ("other_key", "Signature"),
        ("untrusted", "not trusted"),
        ("garbage", "not a JWT"),
        ("audience", "(?i)audience"),
    ],
)
def test_refused_tokens(issuer, case, fragment):
    auth = Authenticator([issuer.url], audience="orbis" if case == "audience" else None)
    if case == "expired":
        token = issuer.token(ttl=-120)
    elif case == "other_key":
        token = issuer.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    elif case == "untrusted":
        token = issuer.token(iss="https://elsewhere.example")
    elif case == "garbage":
        token = "not-a-token"
    else:
        token = issuer.token(aud="someone-else")
    with pytest.raises(AuthError, match=fragment) as err:
        auth.identify(f"Bearer {token}")
    assert token not in str(err.value)


def test_audience_accepted_when_it_matches(issuer):
    auth = Authenticator([issuer.url], audience="orbis")
    assert auth.identify(f"Bearer {issuer.token('aud-ok', aud='orbis')}").name.endswith("aud-ok")


def test_no_trusted_issuer_refuses_tokens(issuer):
    with pytest.raises(AuthError, match="no trusted issuer"):
        Authenticator().identify(f"Bearer {issuer.token()}")


def test_admins(issuer):
    auth = Authenticator([issuer.url], admins=["root:secret", OPENID_PREFIX + "boss"])
    assert auth.identify("type = InfrastructureManager; username = root; password = secret").admin
    assert not auth.identify("type = InfrastructureManager; username = root; password = x").admin
    assert auth.identify(f"Bearer {issuer.token('boss')}").admin
