"""Exceptions raised by livepay. Every one is a :class:`Error`."""

from __future__ import annotations


class Error(Exception):
    """Base class of every livepay exception."""


class InvalidArgument(Error, ValueError):
    """An argument is unusable; nothing was sent.

    Attributes:
        field: the argument (or the field of a snapshot or challenge) at fault.
    """

    field: str | None = None


class ReservationError(Error):
    """The reservation (or the adoption's payer lookup) failed.

    Attributes:
        reason: what failed: ``"signer_refused"``, ``"orchestrator_refused"``,
            ``"not_a_challenge"``, ``"unreachable"``, ``"malformed_answer"``,
            ``"too_many_attempts"``, ``"payment_required"``, ``"cross_origin"``,
            ``"cancelled"`` or ``"failed"``.
        status: the HTTP status of the refusal, when there was one.
        endpoint: the request that failed, when known (``"signer"``, ``"sign-orchestrator-info"``...).
    """

    reason: str | None = None
    status: int | None = None
    endpoint: str | None = None


class HandedOff(Error):
    """Funding was stopped here (:meth:`Session.stop_payments`); adopt the snapshot to fund it."""


class Released(Error):
    """The session is released already.

    Attributes:
        reason: why it was released.
    """

    reason: str | None = None


__all__ = ["Error", "InvalidArgument", "ReservationError", "HandedOff", "Released"]
