"""The official SDK's live-runner payment test cases (livepeer-gateway 1.0.0), carried over as
behaviour of livepay against the served model.

SDK case -> livepay behaviour:

- a terminal 403 / 404 / 409 stops the payment loop; only 404 means "released" -> funding stops
  and the session is released with the reason (404: ``gone``; 403/409: ``rejected``);
- a transient error, a 408 and a 482 reach the next cycle -> funding goes on;
- funding starts once, ``start_payments()`` is idempotent;
- ``stop_payments()`` cancels funding;
- ``aclose()`` POSTs stop to the control URL and marks the session released;
- a failing remote stop still stops funding;
- an already released session's ``aclose()`` only stops local funding (no stop POST);
- the async context manager closes;
- a missing or non-HTTP(S) control URL is refused at once.

The model has no fault knob that makes the session payment endpoint answer 403 or 409 (its fault
plans give 503, 408, 429, timeouts, refusals and lost answers), so those two go through
:class:`FaultProxy`, a proxy in front of the model that answers the payment POST itself; the
session is reserved by hand and adopted with ``adopt_challenge`` so its URLs can point at the
proxy.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from conftest import (
    HANG_UP,
    EventLog,
    FaultProxy,
    adopt_by_hand,
    fault_plan,
    reserve_by_hand,
    session_state,
)

import livepay
from livepay.testing import SimulatedOrchestrator

# A payment cycle is about 3 s: waiting this long with no request shows funding has stopped.
QUIET_S = 3.5


async def assert_quiet(proxy: FaultProxy | None, sim: SimulatedOrchestrator, seconds: float = QUIET_S) -> None:
    """Nothing more reaches the signer (nor the proxy) for ``seconds``: funding has stopped."""
    signer_calls = sim.state()["signer_calls"]
    seen = len(proxy.seen) if proxy is not None else 0
    await asyncio.sleep(seconds)  # The duration is the point: no payment in a whole cycle.
    assert sim.state()["signer_calls"] == signer_calls, "the signer was called after funding stopped"
    if proxy is not None:
        assert [(s.method, s.path) for s in proxy.seen[seen:]] == [], "requests after funding stopped"


# ---------------------------------------------------------------------------------------------
# Terminal answers


async def test_payment_404_means_released_and_stops_funding(sim, closer):
    s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
    closer.append(s)
    log = EventLog(s)
    assert sim.release(s.session_id) is True

    reason = await asyncio.wait_for(s.wait_released(), 15)

    assert "404" in reason and reason.startswith("gone"), reason
    assert s.released and s.release_reason == reason
    await log.finished()
    assert log.events[-1] == {"type": "released", "reason": reason}
    assert log.count("payment_accepted") == 0
    assert sim.state()["released_unpaid"] == 0
    await assert_quiet(None, sim)


@pytest.mark.parametrize("status", [403, 409])
async def test_terminal_payment_answer_stops_funding(sim, closer, status):
    reserved = await reserve_by_hand(sim)

    def rule(method, path):
        return (status, "refused by the test") if method == "POST" and path.endswith("/payment") else None

    async with FaultProxy(sim.url, rule) as proxy:
        s = adopt_by_hand(reserved, sim.signer_url, origin=proxy.url)
        closer.append(s)
        log = EventLog(s)

        reason = await asyncio.wait_for(s.wait_released(), 15)

        assert reason == f"rejected: payment answered {status}"
        await log.finished()
        assert log.events[-1] == {"type": "released", "reason": reason}
        assert proxy.count("POST", "/payment") == 1, "a terminal answer was retried"
        await assert_quiet(proxy, sim)
        # Not a 404: the orchestrator did not release it, so it must end up stopped there (the
        # SDK's aclose() POSTs stop after a 403/409; livepay stops it on the way out).
        assert await s.aclose() == reason
        assert proxy.count("POST", "/stop") == 1
        assert session_state(sim, s.session_id)["release"] == "Stopped"


# ---------------------------------------------------------------------------------------------
# Answers that reach the next cycle


@pytest.mark.parametrize(
    ("answer", "reply"),
    [((503, "busy"), "HTTP 503"), ((408, "slow"), "HTTP 408"), (HANG_UP, None)],
    ids=["503", "408", "connection-reset"],
)
async def test_transient_payment_failure_reaches_the_next_cycle(sim, closer, answer, reply):
    reserved = await reserve_by_hand(sim)
    failed = {"n": 0}

    def rule(method, path):
        if method == "POST" and path.endswith("/payment") and failed["n"] == 0:
            failed["n"] += 1
            return answer
        return None

    async with FaultProxy(sim.url, rule) as proxy:
        s = adopt_by_hand(reserved, sim.signer_url, origin=proxy.url)
        closer.append(s)
        log = EventLog(s)

        failure = await log.wait_count("payment_failed")
        assert failure["endpoint"] == "payment"
        if reply is not None:
            assert failure["reply"] == reply
        # Funding goes on: the next cycle pays.
        await log.wait_for(lambda l: any(e.get("cycle", 0) >= 2 for e in l.of("payment_accepted")))

        assert not s.released
        assert "released" not in log.types()
        assert session_state(sim, s.session_id)["active"]
        assert sim.state()["released_unpaid"] == 0
        assert await s.aclose() == "closed by the client"


async def test_signer_482_reaches_the_next_cycle(closer):
    # 60 s tickets: the reservation's ticket covers a minute, so the signer answers 482.
    async with SimulatedOrchestrator(ticket_seconds=60) as sim:
        s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
        closer.append(s)
        log = EventLog(s)

        skipped = await log.wait_count("cycle_skipped")
        # The cycle after a 482 runs: another cycle event with a higher number.
        await log.wait_for(
            lambda l: any(
                e.get("cycle", 0) > skipped["cycle"] for e in l.events if e["type"] in ("cycle_skipped", "payment_accepted")
            )
        )

        assert sim.state()["signer_482"] >= 2
        assert not s.released
        assert session_state(sim, s.session_id)["active"]
        assert await s.aclose() == "closed by the client"


# ---------------------------------------------------------------------------------------------
# Starting, stopping, closing


async def test_funding_starts_once_and_start_payments_is_idempotent(sim, closer):
    s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
    closer.append(s)
    log = EventLog(s)
    for _ in range(3):
        assert s.start_payments() is None

    await log.wait_count("payment_accepted")
    for _ in range(3):
        assert s.start_payments() is None
    await log.wait_count("payment_accepted", 2)

    accepted = log.of("payment_accepted")
    assert [e["cycle"] for e in accepted] == [1, 2], "two funding loops for one session"
    times = [t for t, e in zip(log.times, log.events) if e["type"] == "payment_accepted"]
    assert min(b - a for a, b in zip(times, times[1:])) > 2.0, times
    model = session_state(sim, s.session_id)
    # One reservation payment, then exactly the payments livepay reports.
    assert model["payments"] == 1 + s.stats()["payments_accepted"]
    assert sim.state()["signer_mints"] == model["payments"]
    await s.aclose()


async def test_stop_payments_cancels_funding(sim, closer):
    s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
    closer.append(s)
    log = EventLog(s)
    await log.wait_count("payment_accepted")

    handoff = await s.stop_payments()

    assert set(handoff) == {"snapshot", "taken_at_ms"}
    assert s.handed_off and not s.released
    assert await s.stop_payments() == handoff, "stop_payments() is not idempotent"
    with pytest.raises(livepay.HandedOff):
        s.start_payments()
    with pytest.raises(livepay.HandedOff):
        await s.wait_released()
    payments = session_state(sim, s.session_id)["payments"]
    await assert_quiet(None, sim)
    model = session_state(sim, s.session_id)
    assert model["payments"] == payments
    assert model["release"] is None, "stop_payments() stopped the session on the orchestrator"
    # Its aclose() sends no stop: the session belongs to whoever adopts the snapshot.
    assert await s.aclose() == "handed off"
    assert sim.state()["released_stopped"] == 0

    again = livepay.adopt_snapshot(handoff, signer_url=sim.signer_url)
    closer.append(again)
    again_log = EventLog(again)
    await again_log.wait_count("payment_accepted")
    assert await again.aclose() == "closed by the client"
    assert session_state(sim, s.session_id)["release"] == "Stopped"


async def test_aclose_posts_stop_and_marks_the_session_released(sim, closer):
    s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
    closer.append(s)
    log = EventLog(s)
    await log.wait_count("payment_accepted")

    reason = await s.aclose()

    assert reason == "closed by the client"
    assert s.released and s.release_reason == reason
    assert "released" in repr(s)
    state = sim.state()
    assert state["released_stopped"] == 1
    assert session_state(sim, s.session_id)["release"] == "Stopped"
    await log.finished()
    assert log.events[-1] == {"type": "released", "reason": reason}
    assert await s.aclose() == reason, "a second aclose() answers differently"
    assert sim.state()["released_stopped"] == 1
    await assert_quiet(None, sim)


async def test_failing_remote_stop_still_stops_funding(tmp_path, closer):
    plan = fault_plan(tmp_path, "stop-fails", "[stop]\nerror_5xx = 1.0\n")
    async with SimulatedOrchestrator(profile=plan) as sim:
        s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
        closer.append(s)
        log = EventLog(s)
        await log.wait_count("payment_accepted")

        reason = await asyncio.wait_for(s.aclose(), 15)

        assert reason == "closed by the client"
        assert s.released
        await log.finished()
        assert log.events[-1]["type"] == "released"
        # The stop never reached the model, so it still holds the session; nobody pays for it.
        assert session_state(sim, s.session_id)["release"] is None
        await assert_quiet(None, sim)


async def test_a_failing_remote_stop_is_reported_by_a_stop_failed_event(tmp_path, closer):
    # aclose()'s documentation: "A failing stop still stops funding (a stop_failed event says
    # so)". Ten sessions, so that an event lost to a race shows.
    plan = fault_plan(tmp_path, "stop-fails", "[stop]\nerror_5xx = 1.0\n")
    async with SimulatedOrchestrator(profile=plan) as sim:
        sessions = await asyncio.gather(
            *(livepay.reserve(sim.runner_url, signer_url=sim.signer_url) for _ in range(10))
        )
        closer.extend(sessions)
        logs = [EventLog(s) for s in sessions]
        await asyncio.gather(*(log.wait_count("payment_accepted") for log in logs))

        reasons = await asyncio.wait_for(asyncio.gather(*(s.aclose() for s in sessions)), 20)

        assert set(reasons) == {"closed by the client"}
        await asyncio.gather(*(log.finished() for log in logs))
        missing = [log.types()[-4:] for log in logs if "stop_failed" not in log.types()]
        assert missing == [], f"{len(missing)} of 10 sessions have no stop_failed event (their last events: {missing[:3]})"
        for log in logs:
            failed = log.of("stop_failed")[0]
            assert failed["reply"] == "HTTP 503"
            assert log.types().index("stop_failed") < log.types().index("released")


async def test_aclose_of_a_released_session_sends_no_stop(sim, closer):
    s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
    closer.append(s)
    sim.release(s.session_id)
    reason = await asyncio.wait_for(s.wait_released(), 15)
    stopped = sim.state()["released_stopped"]

    assert await s.aclose() == reason

    assert sim.state()["released_stopped"] == stopped
    assert session_state(sim, s.session_id)["release"] == "Restarted"
    await assert_quiet(None, sim)


async def test_async_context_manager_closes(sim):
    async with await livepay.reserve(sim.runner_url, signer_url=sim.signer_url) as s:
        assert isinstance(s, livepay.Session)
        log = EventLog(s)
        await log.wait_count("payment_accepted")

    assert s.released and s.release_reason == "closed by the client"
    assert session_state(sim, s.session_id)["release"] == "Stopped"
    await assert_quiet(None, sim)


async def test_async_context_manager_closes_on_an_exception(sim):
    with pytest.raises(RuntimeError, match="boom"):
        async with await livepay.reserve(sim.runner_url, signer_url=sim.signer_url) as s:
            raise RuntimeError("boom")

    assert s.released and s.release_reason == "closed by the client"
    assert session_state(sim, s.session_id)["release"] == "Stopped"


# ---------------------------------------------------------------------------------------------
# The control URL


@pytest.mark.parametrize(
    "control_url",
    [None, "", "   ", "ftp://127.0.0.1/apps/r/session/x", "/apps/r/session/x", "127.0.0.1:8935/x", "http://", 42],
    ids=["none", "empty", "blank", "ftp", "relative", "no-scheme", "no-host", "not-a-string"],
)
async def test_missing_or_non_http_control_url_is_refused_at_once(sim, control_url):
    reserved = await reserve_by_hand(sim)
    challenge = reserved["challenge"]
    calls = sim.state()["signer_calls"]

    with pytest.raises(livepay.InvalidArgument) as raised:
        livepay.adopt_challenge(
            control_url=control_url,
            payment_params=challenge["payment_params"],
            manifest_id=challenge["manifest_id"],
            payment_url=challenge["payment_url"],
            signer_url=sim.signer_url,
            signer_state=reserved["state"],
        )

    assert raised.value.field == "control_url"
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, livepay.Error)
    await asyncio.sleep(0.2)
    assert sim.state()["signer_calls"] == calls, "something was sent for a refused adoption"


def _call_result(data, challenge, signer_url, state):
    """What the SDK's ``LiveRunnerCallResult`` looks like to ``livepay.adopt`` (no SDK needed)."""
    payment = SimpleNamespace(
        _challenge=SimpleNamespace(**challenge),
        _signer_url=signer_url,
        _signer_headers=None,
        _state=state,
        _type="live",
        _app=None,
    )
    return SimpleNamespace(data=data, session_id="", payment_session=payment)


@pytest.mark.parametrize("data", [{}, {"control_url": "ws://127.0.0.1/x"}], ids=["missing", "websocket"])
async def test_adopt_refuses_a_call_result_without_an_http_control_url(sim, data):
    reserved = await reserve_by_hand(sim)
    with pytest.raises(livepay.InvalidArgument) as raised:
        livepay.adopt(_call_result(data, reserved["challenge"], sim.signer_url, reserved["state"]))
    assert raised.value.field == "control_url"


async def test_adopt_refuses_a_free_call_result():
    with pytest.raises(livepay.InvalidArgument) as raised:
        livepay.adopt(SimpleNamespace(data={"control_url": "http://127.0.0.1:1/x"}, payment_session=None))
    assert raised.value.field == "call_result"
