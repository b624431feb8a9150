#!/usr/bin/env bash
# `make demo` as CI runs it, from a clean clone: whether the demo passes or fails, the
# infrastructure it deployed is destroyed, no container of it is left, and the server and the
# engine are stopped (`make stop`), so `make test` then starts the engine from nothing again.
# Exits 1 if the demo or the clean-up failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

make demo 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
# The first id `orbis deploy` prints is the infrastructure's (as scripts/demo.sh reads it).
id=$(grep -oE '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' "$out" | head -n 1)
if [[ -n $id ]]; then
    echo "ci-demo: destroying the demo's infrastructure $id"
    .venv/bin/orbis destroy "$id" || status=1
    # Nothing of it may be left on the engine (containers, networks, volumes carry its label).
    engine=$(./scripts/engine.sh status 2>/dev/null | tail -n 1)
    .venv/bin/python - "$engine" "$id" <<'PY' || status=1
import sys

import docker

engine = docker.DockerClient(base_url=sys.argv[1])
mine = {"label": f"orbis.infrastructure={sys.argv[2]}"}
left = [f"container {c.name}" for c in engine.containers.list(all=True, filters=mine)]
left += [f"network {n.name}" for n in engine.networks.list(filters=mine)]
left += [f"volume {v.name}" for v in engine.volumes.list(filters=mine)]
if left:
    sys.exit(f"ci-demo: the demo left behind: {', '.join(left)}")
print("ci-demo: nothing of the demo is left on the engine")
PY
elif ((status == 0)); then
    echo "ci-demo: the demo printed no infrastructure id" >&2
    status=1
fi
make stop || status=1
exit "$status"
