"""Column types as MariaDB/MySQL need them, for the models and every migration alike.

Registered once at import (store/db.py imports this), so a migration written with plain
`sa.DateTime` or `sa.Text` gets the same types as the models:
- DATETIME(6): MariaDB's DATETIME keeps whole seconds; leases, events and their order need
  microseconds.
- LONGTEXT: MariaDB's TEXT stops at 64 KiB; logs, templates and playbook output grow past it.
PostgreSQL and SQLite render these types as before.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import DateTime, Text
from sqlalchemy.ext.compiler import compiles


@compiles(DateTime, "mysql")
@compiles(DateTime, "mariadb")
def _datetime_with_microseconds(type_: DateTime, compiler: Any, **kw: Any) -> str:
    return "DATETIME(6)"


@compiles(Text, "mysql")
@compiles(Text, "mariadb")
def _long_text(type_: Text, compiler: Any, **kw: Any) -> str:
    return "LONGTEXT" if type_.length is None else compiler.visit_text(type_, **kw)
