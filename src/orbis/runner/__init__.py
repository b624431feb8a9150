"""Where users' recipes run: a per-infrastructure runner, never the service's own process.

Every play holds something a user wrote (templates, artifacts, Galaxy roles, inputs), and
Ansible runs parts of a play on its controller (`delegate_to: localhost`, lookups, action
plugins). So the controller is a throw-away container per infrastructure (container.py, the
options in options.py), as AWX/ansible-runner "execution environments" are; pool.py picks it,
and refuses to run anything when there is none (docs/runner.md). host.py is the explicit
single-user opt-in (ORBIS_UNSAFE_RECIPES_ON_HOST=1).
"""
