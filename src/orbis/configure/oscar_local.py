"""An OSCAR node (`tosca.nodes.indigo.OSCAR`) on the local back-end: its machine runs the OSCAR
stand-in instead of IM's Kubernetes-based OSCAR install, which cannot run in a node container.

The playbook this module writes replaces the OSCAR type's own `configure` recipe (only the
inherited one: a template's own recipe runs as written) on a machine of the local back-end. It
installs in the node (PyPI through the node's own network; pip run from its wheel, the whole
dependency closure pinned) the stand-in's dependencies and moto's S3 server, writes the
stand-in's modules (one zip shipped in the playbook, read from this package:
`orbis.testing.standins.oscar`, self-contained), and starts two systemd
units as an unprivileged user: moto as the cluster's MinIO on port 9000, and the stand-in on
port 80 (`http://<node address>`, the endpoint a hosted function gets), with the node's
`password` for the user `oscar` and its `minio_secretkey` as the MinIO secret key.

Jobs run inside the node itself, as processes in a fresh work folder per job (the "node image
with the script" case of issue 17; the function's `image` is not pulled): the node gets no
container engine socket and no host file, so a user's function never reaches the host.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shlex
import zipfile
from importlib import resources
from typing import Any

from orbis.model.infrastructure import Component, Operation

OSCAR_TYPE = "tosca.nodes.indigo.OSCAR"
STANDIN_PACKAGE = "orbis.testing.standins.oscar"
MODULES = ("app.py", "cluster.py", "jobs.py", "schema.py", "__main__.py")
# what the stand-in imports (moto[s3] and its server, FastAPI, uvicorn, pydantic, httpx), with
# their whole closure pinned for CPython 3.11 (the node image's): installed with --no-deps, so
# pip resolves nothing and only downloads
PACKAGES = (
    "annotated-doc==0.0.7", "annotated-types==0.8.0", "anyio==4.16.0", "blinker==1.9.0",
    "boto3==1.44.18", "botocore==1.44.18", "certifi==2026.10.19.post1", "cffi==2.1.1",
    "charset-normalizer==3.5.3", "click==8.5.1", "cryptography==51.0.1", "fastapi==0.165.0",
    "flask==3.1.3", "flask-cors==6.0.5", "h11==0.16.0", "httpcore==1.0.9", "httpx==0.29.0",
    "idna==3.21", "itsdangerous==2.2.0", "jinja2==3.1.6", "jmespath==1.1.0",
    "markupsafe==3.0.4", "moto==5.2.6", "opentelemetry-api==1.45.3", "py-partiql-parser==0.6.3",
    "pycparser==3.12", "pydantic==2.14.4", "pydantic-core==2.50.5",
    "python-dateutil==2.9.0.post0", "pyyaml==6.0.4", "requests==2.34.2", "responses==0.26.3",
    "s3transfer==0.19.3", "six==1.17.0", "starlette==1.10.0", "typing-extensions==4.16.0",
    "typing-inspection==0.4.5", "urllib3==2.8.0", "uvicorn==0.55.0", "werkzeug==3.1.9",
    "xmltodict==1.0.4",
)
# pip itself, run from its wheel: the node's python3 has no venv/ensurepip (Debian splits them
# off), and apt's index refresh and python3-venv cost more than the whole install
PIP_VERSION = "26.3"
# its wheel from PyPI's simple index (PEP 691 JSON: what pip itself reads), digest checked
GET_PIP = """import hashlib, json, sys, urllib.request
from urllib.parse import urljoin
index = "https://pypi.org/simple/pip/"
ask = urllib.request.Request(index, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
with urllib.request.urlopen(ask, timeout=60) as answer:
    files = json.load(answer)["files"]
name = "pip-%s-py3-none-any.whl" % sys.argv[1]
wheel = next(f for f in files if f["filename"] == name)
with urllib.request.urlopen(urljoin(index, wheel["url"]), timeout=120) as answer:
    data = answer.read()
if hashlib.sha256(data).hexdigest() != wheel["hashes"]["sha256"]:
    sys.exit(name + " does not match its digest")
with open(sys.argv[2], "wb") as out:
    out.write(data)
"""
HOME = "/opt/orbis-oscar"
USER = "orbis-oscar"
PORT = 80
MINIO_PORT = 9000


def replaces(component: Component | None, op: Operation) -> bool:
    """Whether this operation is the OSCAR type's own install recipe (which the local
    back-end replaces with the stand-in)."""
    return (component is not None and component.type == OSCAR_TYPE and op.inherited
            and op.name == "configure")  # fmt: skip


def galaxy_roles(component: Component) -> set[str]:
    """The Galaxy roles the replaced recipe would have needed (not installed locally)."""
    return {a.file for a in component.artifacts if "AnsibleGalaxy" in a.type}


def standin_zip() -> bytes:
    """The stand-in as a zip Python runs from (`PYTHONPATH=<zip> python3 -m oscar_standin`),
    its modules read from this package; fixed dates, so the same code makes the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("oscar_standin/__init__.py", (2020, 1, 1, 0, 0, 0)),
                         '"""The OSCAR stand-in, as Orbis installs it in a local OSCAR node."""\n')
        for name in MODULES:
            text = resources.files(STANDIN_PACKAGE).joinpath(name).read_text()
            archive.writestr(zipfile.ZipInfo(f"oscar_standin/{name}", (2020, 1, 1, 0, 0, 0)),
                             text)  # fmt: skip
    return buffer.getvalue()


def plays() -> list[dict[str, Any]]:
    """The plays installing and starting the stand-in; they read the variables
    `oscar_password` and `oscar_minio_secretkey` (the type's configure inputs). The packages
    download while the rest is written (an asynchronous task)."""
    unit_common = (f"[Service]\nUser={USER}\nWorkingDirectory={HOME}\nRestart=on-failure\n"
                   "RestartSec=1\nNoNewPrivileges=yes\nPrivateTmp=yes\n")  # fmt: skip
    minio_unit = ("[Unit]\nDescription=OSCAR stand-in: MinIO (moto S3)\n" + unit_common
                  + f"Environment=PYTHONPATH={HOME}/site\n"
                  f"ExecStart=/usr/bin/python3 -m moto.server -H 0.0.0.0 -p {MINIO_PORT}\n"
                  "[Install]\nWantedBy=multi-user.target\n")  # fmt: skip
    oscar_unit = (
        "[Unit]\nDescription=OSCAR stand-in\nRequires=orbis-oscar-minio.service\n"
        "After=orbis-oscar-minio.service\n" + unit_common
        + "AmbientCapabilities=CAP_NET_BIND_SERVICE\n"
        f"Environment=PYTHONPATH={HOME}/lib/oscar_standin.zip:{HOME}/site\n"
        f"ExecStart=/usr/bin/python3 -m oscar_standin --port {PORT} "
        f"--minio http://127.0.0.1:{MINIO_PORT} --minio-port {MINIO_PORT} "
        f"--password-file {HOME}/etc/password --minio-key-file {HOME}/etc/minio-key\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )  # fmt: skip
    stamp = f"{HOME}/site/.orbis-" + hashlib.sha256(" ".join(PACKAGES).encode()).hexdigest()[:12]
    install = (
        f"[ -e {stamp} ] || {{ /usr/bin/python3 -c {shlex.quote(GET_PIP)} {PIP_VERSION} "
        f"{HOME}/pip.whl && /usr/bin/python3 {HOME}/pip.whl/pip install --quiet --no-cache-dir "
        "--disable-pip-version-check --root-user-action=ignore --no-deps --only-binary=:all: "
        f"--upgrade --target {HOME}/site " + " ".join(shlex.quote(p) for p in PACKAGES)
        + f" && touch {stamp}; }}"
    )  # fmt: skip
    start = (f"base64 -d {HOME}/lib/oscar_standin.zip.b64 > {HOME}/lib/oscar_standin.zip && "
             "systemctl daemon-reload && systemctl enable orbis-oscar-minio orbis-oscar && "
             "systemctl restart orbis-oscar-minio orbis-oscar")  # fmt: skip
    tasks = [
        {"name": "User and folders of the stand-in", "ansible.builtin.shell": (
            f"id -u {USER} >/dev/null 2>&1 || useradd --system --no-create-home "
            f"--shell /usr/sbin/nologin {USER}; install -d -m 0755 {HOME} {HOME}/lib "
            f"{HOME}/site && install -d -m 0700 -o {USER} {HOME}/etc")},
        {"name": "Packages of the stand-in (download started)", "ansible.builtin.shell": install,
         "async": 900, "poll": 0, "register": "oscar_pip"},
        {"name": "Password of the user oscar", "no_log": True, "ansible.builtin.copy": {
            "dest": f"{HOME}/etc/password", "content": "{{ oscar_password }}\n",
            "owner": USER, "mode": "0600"}},
        {"name": "MinIO secret key", "no_log": True, "ansible.builtin.copy": {
            "dest": f"{HOME}/etc/minio-key", "content": "{{ oscar_minio_secretkey }}\n",
            "owner": USER, "mode": "0600"}},
        {"name": "The stand-in's code", "ansible.builtin.copy": {
            "dest": f"{HOME}/lib/oscar_standin.zip.b64", "mode": "0644",
            "content": base64.b64encode(standin_zip()).decode()}},
        {"name": "MinIO unit", "ansible.builtin.copy": {
            "dest": "/etc/systemd/system/orbis-oscar-minio.service", "content": minio_unit,
            "mode": "0644"}},
        {"name": "OSCAR unit", "ansible.builtin.copy": {
            "dest": "/etc/systemd/system/orbis-oscar.service", "content": oscar_unit,
            "mode": "0644"}},
        {"name": "Packages of the stand-in (installed)", "ansible.builtin.async_status": {
            "jid": "{{ oscar_pip.ansible_job_id }}"},
         "register": "oscar_pip_done", "until": "oscar_pip_done.finished", "retries": 900,
         "delay": 1},
        {"name": "Units running", "ansible.builtin.shell": start},
        {"name": "OSCAR answers", "ansible.builtin.uri": {
            "url": f"http://127.0.0.1:{PORT}/health", "status_code": 200},
         "register": "oscar_health", "retries": 60, "delay": 1,
         "until": "oscar_health is succeeded"},
    ]
    return [{"name": "OSCAR stand-in (local back-end)", "hosts": "all", "gather_facts": False,
             "tasks": tasks}]
