"""Exceptions raised by the client: one per HTTP status class, all carrying the server's error body; one for no answer."""
from __future__ import annotations

from typing import Any, Dict, Optional


class SidxError(Exception):
    """An error answer of the sidx server.

    ``status`` is the HTTP status, ``code`` the server's stable ``SIDX_ERR_*`` code (docs/errors.md), ``field``
    the request field at fault (``items[3].embedding``) when the server names one, ``retry_after`` the seconds of
    a ``Retry-After`` header (429, 503) and ``body`` the decoded JSON error body (empty when it was not JSON).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: Optional[str] = None,
        retry_after: Optional[float] = None,
        body: Optional[Dict[str, Any]] = None,
    ) -> None:
        where = f" (field {field})" if field else ""
        super().__init__(f"{status} {code}: {message}{where}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after
        self.body: Dict[str, Any] = body if body is not None else {}


class BadRequestError(SidxError):
    """400 (and 413/414/415): the request was refused and changed nothing; ``field`` names the culprit."""


class AuthenticationError(SidxError):
    """401 ``SIDX_ERR_UNAUTHENTICATED``: the route needs an API key."""


class PermissionDeniedError(SidxError):
    """403 ``SIDX_ERR_FORBIDDEN``: the key is unknown, revoked or of too low a scope."""


class NotFoundError(SidxError):
    """404: no such item, job or route."""


class ConflictError(SidxError):
    """409 ``SIDX_ERR_CONFLICT``: the state forbids it (a re-index running, a populated catalog, a finished job)."""


class RateLimitedError(SidxError):
    """429 ``SIDX_ERR_RATE_LIMITED``, raised once the client's retries are spent."""


class UnavailableError(SidxError):
    """503 ``SIDX_ERR_OVERLOADED`` / ``SIDX_ERR_NOT_READY``, raised once the client's retries are spent."""


class ServerError(SidxError):
    """500: the server failed (its message is hidden; the server logs it)."""


class UnreachableError(SidxError, OSError):
    """No HTTP answer: connection refused, unknown host, reset or timed out (``code`` ``SIDX_ERR_UNREACHABLE``,
    ``status`` 0). ``url`` is the URL asked, ``__cause__`` the original urllib / socket error. Not retried: after a
    reset or a timeout the server may have done the request. Also an ``OSError``, as these failures were before.
    """

    def __init__(self, url: str, reason: object) -> None:
        super().__init__(0, "SIDX_ERR_UNREACHABLE", f"cannot reach {url}: {reason}")
        self.args = (f"{self.code}: {self.message}",)  # no HTTP status to show
        self.url = url


class ModelChangedError(SidxError):
    """The served model changed under a :class:`~sidx_client.SidTrie` of it (a re-index swapped models: the trie's
    ETag names another model version). The trie keeps the old model's SIDs, which a generator trained on them still
    produces; the new model's are other codes. Map or retrain (the re-index's ``mapping`` file, old -> new SID per
    item), then :meth:`SidTrie.fetch` the new trie. ``code`` ``SIDX_ERR_MODEL_CHANGED``, ``status`` 0 (no HTTP error).
    """

    def __init__(self, was: str, now: str) -> None:
        super().__init__(0, "SIDX_ERR_MODEL_CHANGED", f"the served model changed (version {was} -> {now}): this trie holds "
                         "the old model's SIDs; fetch the new model's trie once the generator knows its SIDs")
        self.args = (f"{self.code}: {self.message}",)
        self.was = was
        self.now = now


_BY_STATUS = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: BadRequestError,
    414: BadRequestError,
    415: BadRequestError,
    429: RateLimitedError,
    503: UnavailableError,
}


def error_for(status: int, body: Dict[str, Any], retry_after: Optional[float]) -> SidxError:
    """The exception for an error answer; ``body`` is the server's ``{statusCode, code, error, message, field?}``."""
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else SidxError)
    code = body.get("code")
    message = body.get("message")
    field = body.get("field")
    return cls(
        status,
        code if isinstance(code, str) else f"HTTP_{status}",
        message if isinstance(message, str) else "no error body",
        field if isinstance(field, str) else None,
        retry_after,
        body,
    )
