"""livepay: keeps Livepeer live-runner sessions funded, in-process, on asyncio.

A streamed live-runner session (trickle, WebSocket, SSE) must keep paying for as long as it is
open: the orchestrator debits its prepaid balance every 5 s and silently releases it on the
first debit it cannot cover. livepay's engine pays out of band, treats the signer's 482 as
"balance current", refreshes on 480, retries transient failures inside the runway, stops on
terminal answers and reports a release with its reason.

Every session of the process is funded by one shared funder (one pooled HTTP client, one task on
livepay's own threads): no thread and no asyncio task per session, and the event loop never
waits on the network.

    import livepay

    async with await livepay.reserve(runner_url, signer_url=signer) as s:
        async for e in s.events():
            if e["type"] == "released":
                print("released:", e["reason"])

Users of the official SDK (``livepeer-gateway``) switch with :func:`adopt`.

Log records go to the standard :mod:`logging` module, logger ``livepay``; they never hold a
signer credential, a signer state or a ticket. Levels are read once and cached (a record below
them costs nothing): after changing a ``livepay`` logger's level at run time, call
:func:`reset_log_levels`.

Fork: the funder runs on threads of the process that first used livepay. A child of ``fork()``
cannot use it (livepay raises :class:`Error`); fork before the first call, or use ``spawn``.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from . import _native
from .errors import Error, HandedOff, InvalidArgument, Released, ReservationError

__all__ = [
    "Error",
    "HandedOff",
    "InvalidArgument",
    "Released",
    "ReservationError",
    "Session",
    "adopt",
    "adopt_challenge",
    "adopt_snapshot",
    "reserve",
    "reset_log_levels",
]

__version__ = "0.1.0"

Headers = Mapping[str, str] | Iterable[tuple[str, str]] | None
Budget = Mapping[str, Any] | None


def reset_log_levels() -> None:
    """Makes a logging level changed at run time take effect (livepay caches levels)."""
    _native.reset_log_levels()


def _headers(headers: Headers, field: str = "signer_headers") -> list[tuple[str, str]]:
    if headers is None:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for pair in pairs:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise _invalid(field, "must be a mapping of names to values") from None
        if not isinstance(name, str) or not isinstance(value, str):
            raise _invalid(field, "names and values must be strings")
        out.append((name, value))
    return out


def _budget(budget: Budget) -> tuple[int | None, float | None]:
    if budget is None:
        return None, None
    if not isinstance(budget, Mapping):
        raise _invalid("budget", "must be a mapping with max_payments and/or max_funded_s")
    unknown = set(budget) - {"max_payments", "max_funded_s"}
    if unknown:
        raise _invalid("budget", f"has unknown keys {sorted(unknown)} (max_payments, max_funded_s)")
    payments = budget.get("max_payments")
    seconds = budget.get("max_funded_s")
    if payments is not None and (not isinstance(payments, int) or isinstance(payments, bool) or not 0 < payments < 2**32):
        raise _invalid("budget", "max_payments must be a positive integer")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))):
        raise _invalid("budget", "max_funded_s must be a number of seconds")
    return payments, (float(seconds) if seconds is not None else None)


def _interval(interval: float) -> float:
    if isinstance(interval, bool) or not isinstance(interval, (int, float)):
        raise _invalid("interval", "must be a number of seconds")
    return float(interval)


def _invalid(field: str, message: str) -> InvalidArgument:
    error = InvalidArgument(f"livepay: `{field}` {message}")
    error.field = field
    return error


def _url(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise _invalid(field, "is not an http(s) URL with a host")
    return value


def _warn_without_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        warnings.warn(
            "livepay: funding started without a running asyncio event loop; it runs on "
            "livepay's own threads, but events and wait_released() need a loop",
            RuntimeWarning,
            stacklevel=3,
        )


class Session:
    """One session funded by this process.

    Funding starts when the session is made (:func:`reserve`, :func:`adopt`,
    :func:`adopt_challenge`, :func:`adopt_snapshot`) and goes on until :meth:`aclose`,
    :meth:`stop_payments`, a release, or the end of the process. ``async with`` closes it.
    Keep a reference while the session should live: a session whose last reference is dropped
    can no longer be closed or watched, so livepay closes it.
    """

    __slots__ = ("_inner",)

    def __init__(self, inner: _native.Session) -> None:
        self._inner = inner

    @property
    def session_id(self) -> str:
        """The session id (the challenge's manifest id)."""
        return self._inner.session_id

    @property
    def control_url(self) -> str:
        """The control URL: ``POST {control_url}/stop`` ends the session."""
        return self._inner.control_url

    @property
    def app_url(self) -> str:
        """Where the app is served."""
        return self._inner.app_url

    @property
    def released(self) -> bool:
        """Whether the session is released, for any cause."""
        return self._inner.released

    @property
    def release_reason(self) -> str | None:
        """Why the session was released; ``None`` while it is not."""
        return self._inner.release_reason

    @property
    def handed_off(self) -> bool:
        """Whether funding was stopped here by :meth:`stop_payments`."""
        return self._inner.handed_off

    @property
    def runway(self) -> float:
        """The estimated time, in seconds, until the credit delivered runs out."""
        return self._inner.runway

    @property
    def spend_wei(self) -> int | None:
        """Wei spent so far (never above what the signer billed); ``None`` until a price was read."""
        return self._inner.spend_wei

    def stats(self) -> dict[str, Any]:
        """The engine's counters: payments sent and accepted, 482 skips, failures, refreshes..."""
        return json.loads(self._inner.stats_json())

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """What happens to the session, as dicts with a ``"type"``.

        Types: ``payment_accepted``, ``cycle_skipped`` (482), ``payment_failed``,
        ``payment_abandoned``, ``refresh_required`` (480), ``refreshed``, ``at_risk``,
        ``lapsed``, ``budget_exhausted``, ``mint_lost``, ``funding_not_required``,
        ``stop_failed``, ``state_changed``, and last ``released`` (with its ``reason``), which
        is never dropped. Events a slow reader leaves behind beyond 1,024 are dropped and
        counted in ``stats()["events_dropped"]``. One reader at a time.
        """
        while True:
            text = await self._inner.next_event()
            if text is None:
                return
            yield json.loads(text)

    async def wait_released(self) -> str:
        """Waits until the session is released, for any cause; the reason.

        Raises :class:`HandedOff` if funding is stopped here by :meth:`stop_payments` instead.
        """
        return await self._inner.wait_released()

    def start_payments(self) -> None:
        """Funding already runs from the session's making: this is a no-op, kept for the SDK's
        idiom. Raises :class:`HandedOff` after :meth:`stop_payments`."""
        if self._inner.handed_off:
            raise HandedOff("livepay: funding was stopped here; adopt the snapshot to fund it again")

    async def stop_payments(self) -> dict[str, Any]:
        """Stops funding without releasing the session.

        Returns ``{"snapshot": ..., "taken_at_ms": ...}``: what :func:`adopt_snapshot` (in this
        or another process) or the livepay daemon's adopt takes to fund it again. After this,
        this object funds nothing: exactly one owner holds the signer state. Idempotent.
        """
        text, taken = await self._inner.stop_payments()
        return {"snapshot": json.loads(text), "taken_at_ms": taken}

    async def aclose(self) -> str:
        """Stops funding, then the session on the orchestrator (``POST {control_url}/stop``)
        unless it is released already; the release reason. A failing stop still stops funding
        (a ``stop_failed`` event says so)."""
        return await self._inner.aclose()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return repr(self._inner)


async def reserve(
    runner_url: str,
    *,
    signer_url: str,
    signer_headers: Headers = None,
    type: str = "live",
    interval: float = 3.0,
    budget: Budget = None,
    app: str | None = None,
) -> Session:
    """Reserves a session on ``runner_url`` and starts funding it.

    The 402 challenge, the signer's first payment, the paid retry; then the session is funded
    by the process's funder. ``signer_headers`` (credentials) go to the signer only.
    ``budget`` may hold ``max_payments`` and ``max_funded_s``. Raises
    :class:`ReservationError` (with ``reason``, ``status``, ``endpoint``) or
    :class:`InvalidArgument`. Cancelling the ``await`` before the paid request left costs
    nothing; after, the paid session is stopped on the orchestrator.
    """
    payments, seconds = _budget(budget)
    inner = await _native.reserve(
        _url(runner_url, "runner_url"),
        _url(signer_url, "signer_url"),
        _headers(signer_headers),
        type,
        _interval(interval),
        payments,
        seconds,
        app,
    )
    return Session(inner)


def adopt_challenge(
    *,
    control_url: str,
    payment_params: str,
    manifest_id: str,
    payment_url: str,
    signer_url: str,
    signer_headers: Headers = None,
    signer_state: Mapping[str, Any] | str | None = None,
    type: str = "live",
    reserved_at: float | None = None,
    session_id: str | None = None,
    app_url: str = "",
    app: str | None = None,
    interval: float = 3.0,
    budget: Budget = None,
) -> Session:
    """Funds a session another client reserved, from its 402 challenge and signer state.

    ``reserved_at`` is the unix time (seconds) of the reservation's payment; ``None`` assumes
    the worst (its prepay spent), so the session pays at once. ``signer_state`` is the signer's
    state after the reservation (the JSON object); without it the signer starts a fresh ledger.
    The client that reserved must not fund it any more: two owners of one signer state kill a
    session. Returns at once; bad fields raise :class:`InvalidArgument`.
    """
    _warn_without_loop()
    if isinstance(signer_state, Mapping):
        state_text: str | None = json.dumps(signer_state, separators=(",", ":"))
    elif signer_state is None or isinstance(signer_state, str):
        state_text = signer_state
    else:
        raise _invalid("signer_state", "must be the signer's JSON object")
    payments, seconds = _budget(budget)
    if not isinstance(control_url, str) or not control_url.startswith(("http://", "https://")):
        raise _invalid("control_url", "is not an http(s) URL with a host")
    inner = _native.adopt_challenge(
        control_url,
        app_url or "",
        session_id,
        payment_params,
        manifest_id,
        payment_url,
        _url(signer_url, "signer_url"),
        _headers(signer_headers),
        state_text,
        type,
        reserved_at,
        _interval(interval),
        payments,
        seconds,
        app,
    )
    return Session(inner)


def adopt(call_result: Any, *, interval: float = 3.0, budget: Budget = None) -> Session:
    """Funds a session reserved by the official SDK (``livepeer_gateway``).

    ``call_result`` is a ``LiveRunnerCallResult`` (from ``runner_selector(...).next()`` or
    ``call_runner``): its ``payment_session`` gives the challenge, the signer URL and headers
    and the signer state, its ``data`` the control and app URLs. The SDK does not record when
    the reservation was paid, so the session pays at once. The SDK must not fund it too: use a
    result whose funding the SDK is not running (stop it first otherwise).
    """
    payment = getattr(call_result, "payment_session", None)
    if payment is None:
        raise _invalid("call_result", "has no payment_session: the call was free, or fixed-price")
    data = getattr(call_result, "data", None) or {}
    challenge = getattr(payment, "_challenge", None)
    if challenge is None:
        raise _invalid("call_result", "payment_session has no challenge")
    headers = getattr(payment, "_signer_headers", None)
    return adopt_challenge(
        control_url=data.get("control_url"),
        app_url=data.get("app_url") or "",
        session_id=getattr(call_result, "session_id", None) or data.get("session_id"),
        payment_params=challenge.payment_params,
        manifest_id=challenge.manifest_id,
        payment_url=challenge.payment_url,
        signer_url=getattr(payment, "_signer_url", None),
        signer_headers=dict(headers) if headers else None,
        signer_state=getattr(payment, "_state", None),
        type=getattr(payment, "_type", None) or "live",
        app=getattr(payment, "_app", None),
        reserved_at=None,
        interval=interval,
        budget=budget,
    )


def adopt_snapshot(
    snapshot: Mapping[str, Any],
    *,
    signer_url: str,
    signer_headers: Headers = None,
    interval: float = 3.0,
    budget: Budget = None,
) -> Session:
    """Funds a session from :meth:`Session.stop_payments`' result (or a livepay daemon's
    handoff body): ``{"snapshot": ..., "taken_at_ms": ...}``. ``signer_url`` must be the
    snapshot's signer: the headers go only where you say."""
    _warn_without_loop()
    if not isinstance(snapshot, Mapping) or "snapshot" not in snapshot or "taken_at_ms" not in snapshot:
        raise _invalid("snapshot", "must be the dict stop_payments() returned")
    taken = snapshot["taken_at_ms"]
    if isinstance(taken, bool) or not isinstance(taken, int) or taken < 0:
        raise _invalid("taken_at_ms", "must be unix milliseconds")
    payments, seconds = _budget(budget)
    inner = _native.adopt_snapshot(
        json.dumps(snapshot["snapshot"]),
        taken,
        _url(signer_url, "signer_url"),
        _headers(signer_headers),
        _interval(interval),
        payments,
        seconds,
    )
    return Session(inner)
