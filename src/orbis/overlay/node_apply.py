"""The small program setup.py runs on a node (python3 is on every node Ansible can manage):
it reads {files, prune, units} as JSON on stdin, writes the files that changed, removes
stale ccd entries and (re)starts each unit whose files changed. Kept apart so that it reads
as the script it is."""

SCRIPT = r"""
import json, os, subprocess, sys
job = json.load(sys.stdin)
changed = set()
for path, (text, mode) in job["files"].items():
    old = None
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    if old != text:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".new"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, int(mode, 8)), "w") as f:
            f.write(text)
        os.replace(tmp, path)
        changed.add(path)
for folder, keep in job["prune"].items():
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            if name not in keep:
                os.remove(os.path.join(folder, name))
if changed:
    subprocess.run(["systemctl", "daemon-reload"], check=True)
for unit, paths in job["units"].items():
    verb = "restart" if changed & set(paths) else "start"
    subprocess.run(["systemctl", "enable", unit], check=True, capture_output=True)
    subprocess.run(["systemctl", verb, unit], check=True)
    print(unit, verb)
"""
