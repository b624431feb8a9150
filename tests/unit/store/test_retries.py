"""A transaction the database rolled back to break a deadlock is run again; other errors are
not. (Seen in e2e: 8 concurrent adds through two servers on MariaDB, one 1213 → a 503.)"""

from __future__ import annotations

import pymysql
import pytest
from sqlalchemy.exc import OperationalError

from orbis.store.coordination import Leases
from orbis.store.repository import Store
from orbis.store.retries import is_retryable, retrying


def mysql_error(code: int, text: str) -> OperationalError:
    orig = pymysql.err.OperationalError(code, text)
    return OperationalError("UPDATE infrastructures ...", {}, orig)


def test_a_deadlocked_transaction_is_run_again() -> None:
    calls: list[int] = []

    @retrying
    def write() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise mysql_error(1213, "Deadlock found when trying to get lock; try restarting")
        return "committed"

    assert write() == "committed" and len(calls) == 3


def test_other_database_errors_are_not_retried() -> None:
    calls: list[int] = []

    @retrying
    def write() -> None:
        calls.append(1)
        raise mysql_error(2003, "Can't connect to MySQL server")  # the database is away

    with pytest.raises(OperationalError):
        write()
    assert len(calls) == 1
    assert is_retryable(mysql_error(1205, "Lock wait timeout exceeded"))


def test_store_and_lease_methods_are_wrapped_but_not_the_session() -> None:
    assert hasattr(Store.add_nodes, "__wrapped__") and hasattr(Store.request, "__wrapped__")
    assert hasattr(Leases.claim, "__wrapped__")
    assert not hasattr(Store.session.__wrapped__, "__wrapped__")  # a context manager, not run twice
