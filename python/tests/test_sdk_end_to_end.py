"""End to end with the official SDK (``livepeer-gateway``): the SDK discovers and reserves on the
served model (``runner_selector(...).next()``, i.e. ``call_runner``), then ``livepay.adopt``
funds the session.

The two long runs (30 s through 482s and a 480 refresh; 60 s of 50 % payment 503s) start together
when the module's first test starts and run side by side on the module's event loop; their tests
wait for their results, so the module takes about a minute rather than a minute and a half.

About the 480: a dialect that asks for refreshes (go-livepeer-next, livepeer-node) does so only
once a signer state's sender nonce reaches 500 (``Dialect::REFRESH_AT_NONCE``), and with 60 s
tickets (needed for the 482s) a session mints a ticket a minute: no 30 s run reaches it. The run
therefore uses go-livepeer-next *and* a refresh storm from transport-mock's TOML fault plans (the
signer answers 480 to every call for 5 s).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

livepeer_gateway = pytest.importorskip("livepeer_gateway")

import pytest_asyncio  # noqa: E402
from conftest import EventLog, fault_plan, session_state  # noqa: E402
from livepeer_gateway.selection import runner_selector  # noqa: E402

import livepay  # noqa: E402
from livepay.testing import SimulatedOrchestrator  # noqa: E402

pytestmark = [pytest.mark.sdk, pytest.mark.asyncio(loop_scope="module")]


async def sdk_reserve(sim: SimulatedOrchestrator, how: str = "orchestrators") -> Any:
    """The SDK's own discovery and reservation on ``sim``: a ``LiveRunnerCallResult``."""
    where = {"orchestrators": [sim.url]} if how == "orchestrators" else {"discovery_url": sim.discovery_url}
    cursor = await runner_selector(signer_url=sim.signer_url, **where)
    return await cursor.next()


async def funded_run(seconds: float, **sim_options: Any) -> dict[str, Any]:
    """Reserves with the SDK, funds with livepay for ``seconds`` (counted from the model's start,
    which is where fault windows are counted from), then reads everything and closes."""
    async with SimulatedOrchestrator(**sim_options) as sim:
        started = time.monotonic()
        result = await sdk_reserve(sim)
        s = livepay.adopt(result)
        log = EventLog(s)
        out: dict[str, Any] = {}
        try:
            await asyncio.sleep(seconds - (time.monotonic() - started))  # The duration is the point.
            out.update(
                session_id=s.session_id,
                sdk_session_id=result.session_id,
                released=s.released,
                events=list(log.events),
                types=log.types(),
                stats=s.stats(),
                state=sim.state(),
                model=session_state(sim, s.session_id),
            )
        finally:
            out["aclose"] = await asyncio.wait_for(s.aclose(), 15)
        out["stopped"] = session_state(sim, s.session_id)["release"]
        return out


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def long_runs(tmp_path_factory):
    plans = tmp_path_factory.mktemp("plans")
    storm = fault_plan(
        plans,
        "refresh-storm",
        """
        [[refresh_storms]]
        at_s = 12
        duration_s = 5
        rate = 1.0
        """,
    )
    runs = {
        "482-480": asyncio.create_task(funded_run(30, dialect="go-livepeer-next", ticket_seconds=60, profile=storm)),
        "503": asyncio.create_task(funded_run(62, profile="payment-503-start")),
    }
    yield runs
    for task in runs.values():
        task.cancel()
    await asyncio.gather(*runs.values(), return_exceptions=True)


async def result_of(runs: dict[str, asyncio.Task], name: str) -> dict[str, Any]:
    return await asyncio.wait_for(asyncio.shield(runs[name]), 120)


# ---------------------------------------------------------------------------------------------
# Short cases (the long runs go on meanwhile)


@pytest.mark.parametrize("how", ["orchestrators", "discovery_url"])
async def test_sdk_reservation_is_funded_by_livepay(long_runs, how):
    async with SimulatedOrchestrator() as sim:
        result = await sdk_reserve(sim, how)
        assert result.payment_session is not None, "the SDK reserved without a payment session"
        s = livepay.adopt(result)
        log = EventLog(s)
        try:
            assert s.session_id == result.session_id == result.data["session_id"]
            assert s.control_url == result.data["control_url"]
            await log.wait_count("payment_accepted", 2)
            assert sim.state()["signer_400"] == 0, "the SDK's signer state was not carried on"
            assert session_state(sim, s.session_id)["release"] is None
        finally:
            assert await s.aclose() == "closed by the client"
        assert session_state(sim, s.session_id)["release"] == "Stopped"


async def test_sdk_session_silent_release_is_reported_by_wait_released(long_runs):
    async with SimulatedOrchestrator() as sim:
        s = livepay.adopt(await sdk_reserve(sim))
        try:
            await EventLog(s).wait_count("payment_accepted")
            assert sim.release(s.session_id) is True

            reason = await asyncio.wait_for(s.wait_released(), 15)

            assert "404" in reason and reason.startswith("gone"), reason
            assert s.released
        finally:
            await s.aclose()


async def test_sdk_adoption_reports_no_lapse(long_runs):
    # livepay.adopt pays at once (the SDK does not record when the reservation was paid); the
    # session was paid a moment ago, so a "lapsed" event is a false alarm.
    async with SimulatedOrchestrator() as sim:
        s = livepay.adopt(await sdk_reserve(sim))
        log = EventLog(s)
        try:
            await log.wait_count("payment_accepted")
            assert "lapsed" not in log.types(), log.events
            assert s.stats()["lapses"] == 0
        finally:
            await s.aclose()


# ---------------------------------------------------------------------------------------------
# The long runs


async def test_sdk_session_funded_30s_through_482s_and_a_480_refresh(long_runs):
    run = await result_of(long_runs, "482-480")
    types = run["types"]

    assert run["session_id"] == run["sdk_session_id"]
    assert "cycle_skipped" in types, types
    assert "refresh_required" in types and "refreshed" in types, types
    assert types.index("cycle_skipped") < types.index("refresh_required")
    # 482s again after the refresh: funding went on.
    assert "cycle_skipped" in types[len(types) - 1 - types[::-1].index("refreshed") :], types
    assert not run["released"] and "released" not in types
    state = run["state"]
    assert state["signer_400"] == 0
    assert state["released_unpaid"] == 0 and state["released_restart"] == 0
    assert run["model"]["active"] and run["model"]["release"] is None
    assert state["refreshes"] >= 1, "no refresh reached the orchestrator"
    assert run["stats"]["refreshes"] >= 1 and run["stats"]["cycles_skipped"] >= 3
    assert run["aclose"] == "closed by the client" and run["stopped"] == "Stopped"


async def test_sdk_session_survives_60s_of_half_the_payments_failing(long_runs):
    run = await result_of(long_runs, "503")
    failed = [e for e in run["events"] if e["type"] == "payment_failed"]

    assert failed, "the fault window produced no failure"
    assert {e["reply"] for e in failed} == {"HTTP 503"}
    assert not run["released"] and "released" not in run["types"]
    state = run["state"]
    assert state["released_unpaid"] == 0 and state["released_restart"] == 0 and state["released_stopped"] == 0
    assert run["model"]["active"]
    assert state["signer_400"] == 0
    assert run["stats"]["payments_accepted"] >= 10
    assert run["aclose"] == "closed by the client" and run["stopped"] == "Stopped"
