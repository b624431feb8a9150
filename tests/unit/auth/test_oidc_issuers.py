"""Several trusted issuers: an administrator is an issuer *and* a subject, `aud` is enforced
when configured, and a slow issuer holds up only the tokens it signed (two local issuers on
127.0.0.1, each serving discovery and JWKS)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from orbis.auth import OPENID_PREFIX, AuthConfigError, Authenticator, AuthError
from orbis.testing.standins.oidc import LocalIssuer

SLOW = 3.0


@pytest.fixture
def issuers() -> Iterator[tuple[LocalIssuer, LocalIssuer]]:
    with LocalIssuer() as first, LocalIssuer() as second:
        yield first, second


def test_admins_subject_from_another_issuer_is_not_admin(issuers):
    home, other = issuers
    auth = Authenticator([home.url, other.url], admins=[f"{OPENID_PREFIX}boss@{home.url}"])
    assert auth.identify(f"Bearer {home.token('boss')}").admin
    impostor = auth.identify(f"Bearer {other.token('boss')}")
    assert not impostor.admin
    assert impostor.key != auth.identify(f"Bearer {home.token('boss')}").key  # owns nothing


def test_admin_without_issuer_is_refused_when_several_are_trusted(issuers):
    home, other = issuers
    with pytest.raises(AuthConfigError, match="names no issuer.*ORBIS_OIDC_ISSUERS"):
        Authenticator([home.url, other.url], admins=[f"{OPENID_PREFIX}boss"])
    # with a single trusted issuer it is that issuer's subject, and only that one's
    alone = Authenticator([home.url], admins=[f"{OPENID_PREFIX}boss"])
    assert alone.identify(f"Bearer {home.token('boss')}").admin


@pytest.mark.parametrize("aud", ["someone-else", None])
def test_wrong_or_missing_audience_is_refused_when_configured(issuers, aud):
    home, _ = issuers
    auth = Authenticator([home.url], audience="orbis")
    token = home.token("a", **({"aud": aud} if aud else {}))
    with pytest.raises(AuthError, match="(?i)aud"):
        auth.identify(f"Bearer {token}")
    assert auth.identify(f"Bearer {home.token('a', aud=['x', 'orbis'])}").name.endswith("a")


def test_audience_is_not_checked_when_not_configured(issuers):
    home, _ = issuers
    assert Authenticator([home.url]).identify(f"Bearer {home.token('b', aud='any')}")


def test_slow_issuer_does_not_hold_up_another_issuers_tokens(issuers):
    slow, fast = issuers
    auth = Authenticator([slow.url, fast.url])
    auth.identify(f"Bearer {fast.token('warm')}")  # the fast issuer's keys are cached
    slow.jwks_delay = SLOW
    slow_done: list[float] = []
    started = time.monotonic()
    worker = threading.Thread(
        target=lambda: (auth.identify(f"Bearer {slow.token('s')}"),
                        slow_done.append(time.monotonic() - started)),
    )  # fmt: skip
    worker.start()
    time.sleep(0.3)  # the slow issuer's fetch is under way
    took = []
    for n in range(5):  # new tokens each time: no identity cache hit
        t0 = time.monotonic()
        assert auth.identify(f"Bearer {fast.token(f'f{n}')}").name.endswith(f"f{n}")
        took.append(time.monotonic() - t0)
    worker.join()
    assert slow_done and slow_done[0] >= SLOW  # it was slow...
    assert max(took) < 0.5, took  # ...and the other issuer's tokens did not wait for it


def test_one_fetch_for_many_concurrent_tokens_of_a_cold_issuer(issuers):
    home, _ = issuers
    home.jwks_delay = 0.5
    auth = Authenticator([home.url])
    before = home.requests
    with ThreadPoolExecutor(8) as pool:
        headers = [f"Bearer {home.token(f'c{n}')}" for n in range(8)]
        assert all(who.name for who in pool.map(auth.identify, headers))
    assert home.requests - before == 2  # discovery + JWKS, once
