"""The OSCAR stand-in as a program of its own, as a local back-end OSCAR node runs it
(configure/oscar_local.py installs it there): its MinIO is a moto S3 server on this machine,
jobs are processes here (jobs.run_process).

    python -m oscar_standin --port 80 --minio http://127.0.0.1:9000 --minio-port 9000

The password of the `oscar` user and the MinIO secret key are read from files (never from the
command line, which every local user can read): --password-file, --minio-key-file.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn

from .app import build_app
from .cluster import Cluster
from .jobs import run_process


def main() -> None:
    parser = argparse.ArgumentParser(prog="oscar_standin")
    parser.add_argument("--cluster-id", default="oscar")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--minio", default="http://127.0.0.1:9000", help="its MinIO (moto)")
    parser.add_argument("--minio-port", type=int, default=9000, help="as seen from outside")
    parser.add_argument("--password-file", type=Path, required=True)
    parser.add_argument("--minio-key-file", type=Path, required=True)
    parser.add_argument("--max-jobs", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    cluster = Cluster(args.cluster_id, args.minio, max_jobs=args.max_jobs, runner=run_process,
                      password=args.password_file.read_text().strip(),
                      minio_key=args.minio_key_file.read_text().strip(),
                      minio_public=f"http://{{host}}:{args.minio_port}")  # fmt: skip
    uvicorn.run(build_app(cluster), host=args.host, port=args.port, log_level="warning",
                lifespan="off")


if __name__ == "__main__":
    main()
