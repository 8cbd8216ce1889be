"""A cancelled ``await`` leaves the session in a defined state (issue 18, point 3).

- ``reserve`` cancelled: either nothing was paid, or the session it paid for is stopped on the
  orchestrator; never a paid session left running on its prepay, or funded by nobody's object.
- ``stop_payments`` cancelled: funding is stopped all the same, and the snapshot is kept: a
  second call returns it (one owner, one snapshot).
"""

from __future__ import annotations

import asyncio

import livepay

from conftest import GUARD_S, EventLog


async def _until(condition, what: str) -> None:
    """Waits for ``condition()`` on the model's state; the guard only turns a hang into a failure."""
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), GUARD_S)
    except asyncio.TimeoutError:
        raise AssertionError(f"not within {GUARD_S} s: {what}") from None


async def test_a_cancelled_reservation_leaves_no_paid_session_running(sim) -> None:
    for delay in (0.0, 0.005, 0.02, 0.05):
        task = asyncio.create_task(livepay.reserve(sim.runner_url, signer_url=sim.signer_url))
        await asyncio.sleep(delay)
        task.cancel()
        try:
            session = await task
        except (asyncio.CancelledError, livepay.ReservationError):
            session = None
        if session is not None:  # It finished before the cancel: it is the caller's to close.
            await session.aclose()
    # Every session the model created is stopped (by the client) once the cancels settle.
    await _until(
        lambda: all(not s["active"] for s in sim.state()["sessions"]),
        f"every paid session stopped: {sim.state()['sessions']}",
    )
    state = sim.state()
    assert state["released_unpaid"] == 0, state
    assert all(s["release"] == "Stopped" for s in state["sessions"]), state["sessions"]


async def test_a_cancelled_stop_payments_still_stops_and_keeps_the_snapshot(sim) -> None:
    s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
    log = EventLog(s)
    await log.wait_count("payment_accepted", 1)
    task = asyncio.create_task(s.stop_payments())
    await asyncio.sleep(0)
    task.cancel()
    try:
        first = await task
    except asyncio.CancelledError:
        first = None
    # Whatever the cancel hit, the session ends up handed off with one snapshot.
    second = await asyncio.wait_for(s.stop_payments(), GUARD_S)
    assert s.handed_off
    if first is not None:
        assert first == second
    assert second["snapshot"]["session_id"] == s.session_id
    await log.finished()
    # The snapshot funds it again, here: payments go on, no release.
    t = livepay.adopt_snapshot(second, signer_url=sim.signer_url)
    again = EventLog(t)
    await again.wait_count("payment_accepted", 1)
    assert not t.released
    assert await t.aclose() == "closed by the client"
