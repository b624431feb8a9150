"""OpenStackProvider: the provider interface (providers/base.py) on OpenStack, assembled from the
package's concerns. Each mixin holds one concern and builds only on OpenStackSession
(session.py); `Instances` composes the ones a launch needs, `Teardown` those a destroy needs.
"""

from __future__ import annotations

from orbis.providers.openstack.instances import Instances
from orbis.providers.openstack.teardown import Teardown


class OpenStackProvider(Instances, Teardown):
    name = "openstack"
