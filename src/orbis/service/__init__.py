"""The service layer: every operation the API and CLI offer, with ownership checks.

Interfaces stay thin: they translate requests to these calls and ServiceErrors to answers.
`OrbisService` is assembled from one module per concern.
"""

from orbis.service.access import AccessMixin
from orbis.service.adoption import AdoptionMixin, Detached
from orbis.service.core import ServiceBase, StateView
from orbis.service.elastic import ElasticMixin
from orbis.service.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFoundError,
    NotSupported,
    QuotaExceeded,
    ServiceError,
    TooManyRequests,
)
from orbis.service.functions import FunctionsMixin
from orbis.service.lifecycle import LifecycleMixin
from orbis.service.quotas import QuotaMixin
from orbis.service.sites import SitesMixin
from orbis.service.transfer import TransferMixin


class OrbisService(
    TransferMixin, AccessMixin, QuotaMixin, LifecycleMixin, AdoptionMixin, SitesMixin,
    FunctionsMixin, ElasticMixin, ServiceBase,
):  # fmt: skip
    """All operations of the service."""


__all__ = [
    "Conflict",
    "Detached",
    "Forbidden",
    "InvalidRequest",
    "NotFoundError",
    "NotSupported",
    "OrbisService",
    "QuotaExceeded",
    "ServiceError",
    "StateView",
    "TooManyRequests",
]
