"""Errors the service layer raises; each interface maps them to its own answers."""


class ServiceError(Exception):
    """A request the service refuses; subclasses say why (the API maps them to status codes)."""


class InvalidRequest(ServiceError):
    pass


class NotFoundError(ServiceError):
    pass


class Forbidden(ServiceError):
    pass


class Conflict(ServiceError):
    pass


class NotSupported(ServiceError):
    """An operation this server does not offer (yet); answered as IM's error shape, never 500."""


class QuotaExceeded(ServiceError):
    """More nodes than the caller's quota allows; refused before anything is created."""


class TooManyRequests(ServiceError):
    """More of something open at once than a limit allows (answered 429, naming the limit)."""
