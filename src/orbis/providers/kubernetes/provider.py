"""KubernetesProvider: the provider interface (providers/base.py) on a Kubernetes cluster,
assembled from the package's concerns: nodes, container apps and quotas, each a mixin over
KubernetesSession (session.py).
"""

from __future__ import annotations

from orbis.providers.kubernetes.apps import Apps
from orbis.providers.kubernetes.nodes import Nodes
from orbis.providers.kubernetes.quotas import Quotas


class KubernetesProvider(Nodes, Apps, Quotas):
    name = "kubernetes"
