"""Mitogen's linear strategy without its CPU pinning (the runner's ANSIBLE_STRATEGY_PLUGINS).

ansible_mitogen pins its processes to CPUs by a fixed plan made for a big idle machine: on 2
cores the connection multiplexer gets CPU 0, and the controller, every worker and every SSH
client CPU 1, whatever else runs there. A runner shares its CPUs with the nodes it configures
(the local back-end) and with other runners, so the kernel places them better: a 20-node level
took 0.9 s less wall time with the same CPU seconds (docs/runner.md). Same file name as
Mitogen's, so ANSIBLE_STRATEGY stays `mitogen_linear` with this folder or Mitogen's own.
"""

import ansible_mitogen.affinity

# the base Policy's methods do nothing; every caller looks the policy up at call time
ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()

import ansible_mitogen.loaders  # noqa: E402  (after the policy is replaced)
import ansible_mitogen.strategy  # noqa: E402

Base = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):
    pass
