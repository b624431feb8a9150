"""EC2Provider: the provider interface (providers/base.py) on Amazon EC2, assembled from the
package's concerns. Each mixin holds one concern and builds only on EC2Session (session.py);
`Instances` composes the ones a launch needs, `Teardown` those a destroy needs.
"""

from __future__ import annotations

from orbis.providers.ec2.instances import Instances
from orbis.providers.ec2.teardown import Teardown


class EC2Provider(Instances, Teardown):
    name = "ec2"
