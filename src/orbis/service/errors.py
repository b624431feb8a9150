"""Errors the service layer raises, each with the HTTP status the API and the dashboard answer
it with (one table, so the two interfaces never drift apart)."""


class ServiceError(Exception):
    """A request the service refuses; subclasses say why."""

    status = 400


class InvalidRequest(ServiceError):
    status = 400


class NotFoundError(ServiceError):
    status = 404


class Forbidden(ServiceError):
    status = 403


class Conflict(ServiceError):
    status = 409


class NotSupported(ServiceError):
    """An operation this server does not offer (yet); answered as IM's error shape, never 500."""


class QuotaExceeded(ServiceError):
    """More nodes than the caller's quota allows; refused before anything is created."""

    status = 403


class TooManyRequests(ServiceError):
    """More of something open at once than a limit allows (answered naming the limit)."""

    status = 429
