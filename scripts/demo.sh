#!/usr/bin/env bash
# The demo: deploy examples/hello.yaml with live progress, print its outputs, fetch its page.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
orbis=$root/.venv/bin/orbis
cd "$root"
log=$(mktemp)
"$orbis" deploy examples/hello.yaml | tee "$log"
id=$(grep -oE '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' "$log" | head -n 1)
rm -f "$log"
url=$("$orbis" outputs "$id" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])')
echo
echo "Fetching $url"
curl -fsS --retry 5 --retry-delay 1 --retry-connrefused "$url"
echo
echo "Destroy it with: .venv/bin/orbis destroy $id"
