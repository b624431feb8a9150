"""Transactions a database gave up on to break a deadlock are run again.

Several servers (and each server's tasks) write the same rows: InnoDB (MariaDB) then resolves
lock cycles by failing one transaction with 1213 "Deadlock found" (or 1205 after a lock wait),
PostgreSQL with SQLSTATE 40P01/40001. The failed transaction was rolled back whole, so a store
method that is one transaction is safe to run again; that is what the database asks for
("try restarting transaction"). Every public method of `Store`, `Leases` and `ActionLog` is one
transaction (or idempotent), so they are wrapped here once, rather than one by one.
"""

from __future__ import annotations

import functools
import inspect
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

ATTEMPTS = 6
MYSQL_RETRY = {1213, 1205}  # deadlock; lock wait timeout
POSTGRES_RETRY = {"40P01", "40001"}  # deadlock detected; serialization failure
C = TypeVar("C", bound=type)


def is_retryable(exc: DBAPIError) -> bool:
    """True if the database rolled the transaction back to break a deadlock."""
    orig = exc.orig
    args = getattr(orig, "args", ())
    code = args[0] if args else None
    diag = getattr(orig, "diag", None)  # psycopg 3 keeps the SQLSTATE here too
    state = getattr(orig, "sqlstate", None) or getattr(diag, "sqlstate", None)
    return code in MYSQL_RETRY or state in POSTGRES_RETRY


def retrying(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return fn(*args, **kwargs)
            except DBAPIError as exc:
                if attempt == ATTEMPTS or not is_retryable(exc):
                    raise
                time.sleep(random.uniform(0.005, 0.02) * attempt)  # apart, then again
        raise AssertionError("unreachable")

    return run


def retry_deadlocks(cls: C) -> C:
    """Class decorator: each public method (not context managers) retried on a deadlock."""
    for name, value in list(vars(cls).items()):
        plain = inspect.isfunction(value) and not inspect.isgeneratorfunction(value)
        if name.startswith("_") or not plain or hasattr(value, "__wrapped__"):
            continue  # private helpers run inside a caller's transaction; session() yields
        setattr(cls, name, retrying(value))
    return cls
