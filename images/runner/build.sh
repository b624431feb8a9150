#!/usr/bin/env bash
# Build the runner image orbis-runner:<recipe-hash> (and tag orbis-runner:latest) without any
# registry: the node image (images/node/build.sh) plus ansible-core, whose wheels pip fetches
# on the host (the package mirror) and installs into a folder that `podman build` copies in.
# The runner is the container in which each infrastructure's recipes run (docs/runner.md).
#
# ansible-core's version is the host venv's (same major/minor as the service was tested with);
# ORBIS_RUNNER_ANSIBLE overrides it. The recipe hash covers this script, the Containerfile,
# ansible.cfg, that version and the node image's id: any change rebuilds; otherwise this exits
# at once.
#
# Env: ORBIS_HOME (default <repo>/.orbis), ORBIS_NODE_IMAGE (default orbis-node:latest),
#      ORBIS_RUNNER_REPO (default orbis-runner), ORBIS_RUNNER_ANSIBLE (e.g. 2.19.14),
#      ORBIS_RUNNER_MITOGEN (Mitogen for Ansible, default 0.3.54; "none" leaves it out).
# Mitogen's strategy plugins make large levels cheaper (one Python per node instead of one per
# task, docs/runner.md); the image's label orbis.runner.mitogen names the folder of the
# mitogen_linear it runs (strategy/mitogen_linear.py: Mitogen's, without its CPU pinning).
# Usage: images/runner/build.sh [--force]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export ORBIS_HOME="${ORBIS_HOME:-$repo/.orbis}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$repo/scripts/containers.conf}"
image_repo="${ORBIS_RUNNER_REPO:-orbis-runner}"
base="${ORBIS_NODE_IMAGE:-orbis-node:latest}"
force=0
[[ "${1:-}" == "--force" ]] && force=1

log() { echo "runner/build.sh: $*" >&2; }

# One build at a time per home (parallel test workers may all ask; see ../node/build.sh)
mkdir -p "$ORBIS_HOME/build"
exec 9>"$ORBIS_HOME/build/.runner-build.lock"
flock 9

podman image exists "$base" || { log "node image $base missing: run images/node/build.sh first"; exit 1; }
python="$repo/.venv/bin/python"
[[ -x $python ]] || python="$(command -v python3)"
version="${ORBIS_RUNNER_ANSIBLE:-$("$python" -c 'import importlib.metadata as m; print(m.version("ansible-core"))' 2>/dev/null || true)}"
[[ -n $version ]] || { log "no ansible-core in $python: set ORBIS_RUNNER_ANSIBLE or run make venv"; exit 1; }
mitogen="${ORBIS_RUNNER_MITOGEN:-0.3.54}"
base_id="$(podman image inspect --format '{{.Id}}' "$base")"

recipe_hash="$( (cat "$here/build.sh" "$here/Containerfile" "$here/ansible.cfg" "$here"/strategy/*.py
                 echo "$version $mitogen $base_id") \
    | sha256sum | cut -c1-12)"
tag="$image_repo:$recipe_hash"

if [[ $force == 0 ]] && podman image exists "$tag"; then
    podman tag "$tag" "$image_repo:latest"
    log "$tag is up to date (cached), nothing to build"
    echo "$tag"
    exit 0
fi

start=$(date +%s)
mkdir -p "$ORBIS_HOME/build"
context="$(mktemp -d "$ORBIS_HOME/build/runner.XXXXXX")"
trap 'rm -rf "$context"' EXIT

# The node image's Python is Debian bookworm's 3.11 (glibc 2.36): binary wheels for exactly that.
log "installing ansible-core $version for python 3.11 into the build context"
wheels="$ORBIS_HOME/build/runner-wheels"
platforms=()
for p in manylinux_2_36_x86_64 manylinux_2_34_x86_64 manylinux_2_28_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux_2_5_x86_64 linux_x86_64; do
    platforms+=(--platform "${p/x86_64/$(uname -m)}")
done
"$python" -m pip download -q --only-binary=:all: --python-version 3.11 --implementation cp \
    "${platforms[@]}" -d "$wheels" "ansible-core==$version" 2>&1 | grep -v "is ignored" >&2 || true
"$python" -m pip install -q --no-index --find-links "$wheels" --only-binary=:all: \
    --python-version 3.11 --implementation cp "${platforms[@]}" --no-compile \
    --target "$context/site" "ansible-core==$version" 2>&1 | grep -v "is ignored" >&2 || true
[[ -d $context/site/ansible ]] || { log "ansible-core $version could not be installed"; exit 1; }
strategy=""
if [[ $mitogen != none ]]; then
    log "installing mitogen $mitogen"
    "$python" -m pip download -q --no-deps --only-binary=:all: -d "$wheels" "mitogen==$mitogen" 2>&1 \
        | grep -v "is ignored" >&2 || true
    "$python" -m pip install -q --no-deps --no-index --find-links "$wheels" --no-compile \
        --target "$context/site" "mitogen==$mitogen" 2>&1 | grep -v "is ignored" >&2 || true
    [[ -d $context/site/ansible_mitogen/plugins/strategy ]] \
        || { log "mitogen $mitogen could not be installed"; exit 1; }
    # our mitogen_linear: Mitogen's, without its CPU pinning (strategy/mitogen_linear.py)
    strategy=/usr/local/share/orbis/strategy
fi
rm -rf "$context/site/bin"  # their shebangs name the host's Python; ours are below
# Byte-code now: the runner's root is read-only, so without it every ansible-playbook start
# would compile ansible from source again (seconds of CPU). unchecked-hash: valid whatever
# the files' times after COPY (same Python minor version: 3.11).
"$python" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$context/site" >/dev/null

mkdir -p "$context/bin"
for tool in ansible-playbook:playbook ansible-galaxy:galaxy ansible:adhoc ansible-inventory:inventory; do
    cat >"$context/bin/${tool%%:*}" <<SCRIPT
#!/usr/bin/python3
import sys
from ansible.cli.${tool#*:} import main
sys.exit(main())
SCRIPT
    chmod 0755 "$context/bin/${tool%%:*}"
done
cp "$here/Containerfile" "$here/ansible.cfg" "$context/"
mkdir -p "$context/strategy"
[[ $mitogen == none ]] || cp "$here"/strategy/*.py "$context/strategy/"

podman build --quiet --pull=never --network=none --build-arg "BASE=$base" \
    --label "orbis.runner.recipe=$recipe_hash" --label "orbis.runner.mitogen=$strategy" -t "$tag" "$context" >/dev/null
podman tag "$tag" "$image_repo:latest"
# Drop images of older recipes (podman refuses, harmlessly, while a container still uses one).
podman images --format '{{.Repository}}:{{.Tag}}' \
    | grep -E "(^|/)$image_repo:[0-9a-f]{12}\$" | grep -v ":$recipe_hash\$" \
    | xargs -r podman rmi >/dev/null 2>&1 || true
log "built $tag in $(( $(date +%s) - start ))s"
echo "$tag"
