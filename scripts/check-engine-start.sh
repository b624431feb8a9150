#!/usr/bin/env bash
# Check that scripts/engine.sh starts the podman service from nothing, every time, on a busy
# machine: ROUNDS times (default 10) stop it, remove its socket, start it, while LOADERS busy
# loops (default 2) keep the CPUs loaded. Prints PASS/FAIL and the time of each round; exits 1
# if any round failed (with engine.sh's own message).
#
#   scripts/check-engine-start.sh [ROUNDS]
#
# It starts and stops its OWN podman service, under ORBIS_CHECK_HOME (default
# <repo>/.orbis-check), never the one of ORBIS_HOME that the server and tests use.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
rounds="${1:-10}"
loaders="${LOADERS:-2}"
check_home="${ORBIS_CHECK_HOME:-$repo/.orbis-check}"
main_home="${ORBIS_HOME:-$repo/.orbis}"

if [[ "$(realpath -m "$check_home")" == "$(realpath -m "$main_home")" ]]; then
    echo "check-engine-start: ORBIS_CHECK_HOME must not be ORBIS_HOME ($main_home):" \
        "this check stops the engine it starts" >&2
    exit 2
fi
if [[ "${DOCKER_HOST:-}" == "unix://$(realpath -m "$check_home")/run/podman.sock" ]]; then
    echo "check-engine-start: DOCKER_HOST is the engine under ORBIS_CHECK_HOME; it would be stopped" >&2
    exit 2
fi
if [[ -S /var/run/docker.sock ]] \
    && curl -s --max-time 3 --unix-socket /var/run/docker.sock http://d/_ping | grep -q OK; then
    echo "check-engine-start: a Docker daemon answers; engine.sh would use it, nothing to check"
    exit 0
fi

engine() { ORBIS_HOME="$check_home" "$here/engine.sh" "$@"; }
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

load_pids=()
cleanup() {
    for pid in "${load_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    engine stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

for _ in $(seq "$loaders"); do
    yes >/dev/null &
    load_pids+=("$!")
done

failed=0
errors="$(mktemp)"
for round in $(seq "$rounds"); do
    engine stop >/dev/null 2>&1
    rm -f "$check_home/run/podman.sock"
    started=$(now_ms)
    if url="$(engine start 2>"$errors" | tail -n 1)" && [[ $url == unix://* ]]; then
        printf 'round %2d: PASS  %6d ms  %s\n' "$round" $(($(now_ms) - started)) "$url"
    else
        failed=$((failed + 1))
        printf 'round %2d: FAIL  %6d ms\n' "$round" $(($(now_ms) - started))
        sed 's/^/    /' "$errors"
    fi
done
rm -f "$errors"
echo "check-engine-start: $((rounds - failed))/$rounds rounds passed with $loaders CPU loaders"
((failed == 0))
