"""Adopting sessions other clients reserved (``adopt_challenge``, ``adopt_snapshot``) and the
errors the package raises (``InvalidArgument.field``, ``ReservationError.reason/status/endpoint``).
"""

from __future__ import annotations

import asyncio

import pytest
from conftest import EventLog, adopt_by_hand, fault_plan, reserve_by_hand, session_state

import livepay
from livepay.testing import SimulatedOrchestrator

# ---------------------------------------------------------------------------------------------
# adopt_challenge


async def test_adopt_challenge_funds_another_clients_reservation(sim, closer):
    reserved = await reserve_by_hand(sim)
    s = adopt_by_hand(reserved, sim.signer_url)
    closer.append(s)
    assert s.session_id == reserved["created"]["session_id"]
    assert s.control_url == reserved["created"]["control_url"]
    log = EventLog(s)

    await log.wait_count("payment_accepted", 2)

    assert log.types().count("lapsed") == 0 and log.types().count("at_risk") == 0
    assert session_state(sim, s.session_id)["payments"] >= 3
    assert sim.state()["signer_400"] == 0, "the adopted signer state was not carried on"
    assert await s.aclose() == "closed by the client"
    assert session_state(sim, s.session_id)["release"] == "Stopped"


async def test_adoption_without_reserved_at_reports_no_lapse(sim, closer):
    # reserved_at=None "assumes the worst (its prepay spent), so the session pays at once": the
    # session is paid at once, nothing lapsed, and nothing should say it did. (livepay.adopt of an
    # SDK result always takes this path.)
    reserved = await reserve_by_hand(sim)
    s = adopt_by_hand(reserved, sim.signer_url, reserved_at=None)
    closer.append(s)
    log = EventLog(s)

    first = await log.wait_count("payment_accepted")
    assert log.times[log.events.index(first)] < 2.0, "an adoption without reserved_at did not pay at once"

    assert "lapsed" not in log.types(), f"a fresh, paid session reported a lapse: {log.events}"
    assert s.stats()["lapses"] == 0
    assert session_state(sim, s.session_id)["release"] is None


async def test_adoption_whose_signer_is_unreachable_is_released_with_the_reason(sim):
    reserved = await reserve_by_hand(sim)
    s = adopt_by_hand(reserved, "http://127.0.0.1:1")
    log = EventLog(s)

    reason = await asyncio.wait_for(s.wait_released(), 20)

    assert reason.startswith("not funded"), reason
    assert s.released and not s.handed_off
    await log.finished()
    assert log.events[-1] == {"type": "released", "reason": reason}
    assert await s.aclose() == reason


async def test_adoption_of_an_empty_manifest_id_names_manifest_id(sim):
    reserved = await reserve_by_hand(sim)
    with pytest.raises(livepay.InvalidArgument) as raised:
        adopt_by_hand(reserved, sim.signer_url, manifest_id="", session_id=None)
    assert raised.value.field == "manifest_id", f"the error names {raised.value.field!r}: {raised.value}"


async def test_adoption_refuses_a_payment_url_on_another_origin(sim):
    reserved = await reserve_by_hand(sim)
    with pytest.raises(livepay.InvalidArgument) as raised:
        adopt_by_hand(reserved, sim.signer_url, payment_url="http://127.0.0.2:9/apps/r/session/x/payment")
    assert raised.value.field == "payment_url"


# ---------------------------------------------------------------------------------------------
# adopt_snapshot


async def test_adopt_snapshot_refuses_another_signer(sim, closer):
    s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
    closer.append(s)
    handoff = await s.stop_payments()
    with pytest.raises(livepay.InvalidArgument) as raised:
        livepay.adopt_snapshot(handoff, signer_url="http://127.0.0.1:9")
    assert raised.value.field == "signer_url"
    with pytest.raises(livepay.InvalidArgument) as raised:
        livepay.adopt_snapshot({"snapshot": handoff["snapshot"]}, signer_url=sim.signer_url)
    assert raised.value.field == "snapshot"
    with pytest.raises(livepay.InvalidArgument) as raised:
        livepay.adopt_snapshot({**handoff, "taken_at_ms": -1}, signer_url=sim.signer_url)
    assert raised.value.field == "taken_at_ms"


async def test_released_session_cannot_be_handed_off(sim, closer):
    s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
    closer.append(s)
    sim.release(s.session_id)
    reason = await asyncio.wait_for(s.wait_released(), 15)
    with pytest.raises(livepay.Released) as raised:
        await s.stop_payments()
    assert raised.value.reason == reason


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "headers",
    [{"Bad Name": "x"}, {"X-Token": "a\r\nInjected: 1"}, {"Host": "evil"}],
    ids=["space-in-name", "crlf-in-value", "hop-by-hop"],
)
async def test_an_unusable_signer_header_is_an_invalid_argument(sim, headers):
    # "InvalidArgument: an argument is unusable; nothing was sent."
    with pytest.raises(livepay.Error) as raised:
        await livepay.reserve(sim.runner_url, signer_url=sim.signer_url, signer_headers=headers)
    assert isinstance(raised.value, livepay.InvalidArgument), (
        f"{type(raised.value).__name__}(reason={getattr(raised.value, 'reason', None)!r}): {raised.value}"
    )
    assert raised.value.field == "signer_headers"
    assert sim.state()["sessions_created"] == 0


async def test_a_signer_url_with_credentials_is_an_invalid_argument(sim):
    with pytest.raises(livepay.Error) as raised:
        await livepay.reserve(sim.runner_url, signer_url="http://user:hunter2@127.0.0.1:1")
    assert "hunter2" not in str(raised.value)
    assert isinstance(raised.value, livepay.InvalidArgument), (
        f"{type(raised.value).__name__}(reason={getattr(raised.value, 'reason', None)!r}): {raised.value}"
    )
    assert raised.value.field == "signer_url"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"runner_url": "ftp://x/apps/r/session"}, "runner_url"),
        ({"signer_url": "signer:8081"}, "signer_url"),
        ({"interval": 0.01}, "interval"),
        ({"interval": "3"}, "interval"),
        ({"budget": {"max_payments": 0}}, "budget"),
        ({"budget": {"max_funded_s": -1}}, "budget"),
        ({"budget": {"forever": True}}, "budget"),
        ({"type": "monthly"}, "type"),
        ({"signer_headers": [("only-a-name",)]}, "signer_headers"),
    ],
)
async def test_reserve_names_the_unusable_argument(sim, kwargs, field):
    options = {"runner_url": sim.runner_url, "signer_url": sim.signer_url, **kwargs}
    runner_url = options.pop("runner_url")
    with pytest.raises(livepay.InvalidArgument) as raised:
        await livepay.reserve(runner_url, **options)
    assert raised.value.field == field
    assert sim.state()["sessions_created"] == 0


async def test_reservation_errors_carry_reason_status_and_endpoint(sim):
    with pytest.raises(livepay.ReservationError) as raised:
        await livepay.reserve(sim.url + "/apps/no-such-runner/session", signer_url=sim.signer_url)
    assert raised.value.reason == "orchestrator_refused"
    assert raised.value.status == 404

    with pytest.raises(livepay.ReservationError) as raised:
        await livepay.reserve(sim.runner_url, signer_url="http://127.0.0.1:1")
    assert raised.value.reason == "unreachable"
    assert raised.value.endpoint == "sign-orchestrator-info"

    with pytest.raises(livepay.ReservationError) as raised:
        await livepay.reserve(sim.runner_url, signer_url=sim.signer_url, type="lv2v")
    assert (raised.value.reason, raised.value.status, raised.value.endpoint) == ("signer_refused", 400, "signer")


async def test_an_orchestrator_refusal_names_its_endpoint(sim):
    # ReservationError.endpoint: "the request that failed, when known": here the reservation.
    with pytest.raises(livepay.ReservationError) as raised:
        await livepay.reserve(sim.url + "/apps/no-such-runner/session", signer_url=sim.signer_url)
    assert raised.value.endpoint == "reservation"


async def test_cancelled_reservation_leaves_no_session_running(tmp_path):
    # A slow signer, and the await cancelled while the reservation is under way: either nothing
    # was paid, or the paid session is stopped; never left running on its prepay.
    plan = fault_plan(tmp_path, "slow-signer", '[signer]\nlatency = { kind = "fixed", ms = 400 }\n')
    async with SimulatedOrchestrator(profile=plan) as sim:
        cancelled = 0
        for delay in (0.05, 0.2, 0.35, 0.45):
            try:
                s = await asyncio.wait_for(livepay.reserve(sim.runner_url, signer_url=sim.signer_url), delay)
            except asyncio.TimeoutError:
                cancelled += 1
            else:
                await s.aclose()
        assert cancelled >= 2
        await asyncio.sleep(2.0)  # Past any stop a cancelled reservation sends.
        live = [s for s in sim.state()["sessions"] if s["active"]]
        assert live == [], f"a cancelled reservation left sessions running: {live}"
