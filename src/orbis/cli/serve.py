"""`orbis server`: checks the database, then runs uvicorn with one or N worker processes."""

from __future__ import annotations

import logging.config
import os
import shutil
import sys

from orbis import config
from orbis.logs import logging_config


def run(host: str | None, port: int | None, workers: int) -> None:
    import uvicorn

    settings = config.load()
    level = os.environ.get("ORBIS_LOG_LEVEL", "info")
    log_config = logging_config(level)
    logging.config.dictConfig(log_config)
    _check_database(settings.db_url)
    if workers > 1:
        # counters of every worker, summed by /metrics; set before prometheus-client loads
        metrics_dir = settings.run_dir / f"metrics-{os.getpid()}"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    options = {
        "host": host or settings.listen_host,
        "port": port or settings.listen_port,
        "log_level": level,
        "log_config": log_config,
        # one line per request costs more than answering a state request; opt in to it
        "access_log": os.environ.get("ORBIS_ACCESS_LOG", "no").lower() in ("1", "yes", "true"),
        # asyncio's loop, not uvloop: uvloop answered ~30 % more requests under load but left a
        # few connections waiting 1-2 s (bench/api_load.py p99); httptools parses either way
        "loop": "asyncio",
    }
    try:
        if workers == 1:
            from orbis.api.app import create_app

            uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]
        else:  # each worker builds its own app (and scheduler) from the same settings
            uvicorn.run("orbis.api.app:create_app", factory=True, workers=workers,
                        **options)  # type: ignore[arg-type]  # fmt: skip
    finally:
        if workers > 1:
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def _check_database(url: str) -> None:
    """Migrate the schema once, before any worker starts; refuse a database a newer Orbis
    migrated, or one that does not answer, with a message rather than a traceback."""
    from sqlalchemy.exc import DBAPIError

    from orbis.store.db import SchemaError, make_engine, migrate

    engine = make_engine(url)
    try:
        migrate(engine)
    except SchemaError as exc:
        sys.stderr.write(f"orbis server: refusing to start: {exc}\n")
        raise SystemExit(3) from None
    except DBAPIError as exc:
        where = engine.url.render_as_string(hide_password=True)
        sys.stderr.write(f"orbis server: the database at {where} does not answer: "
                         f"{str(exc.orig or exc).strip().splitlines()[0]}\n")  # fmt: skip
        raise SystemExit(3) from None
    finally:
        engine.dispose()
