"""1,000 sessions from one Python process against the served model: none lapses.

Marked ``slow`` (select with ``-m slow``, skip with ``-m 'not slow'``); it runs by default.
"""

from __future__ import annotations

import asyncio
import time

import pytest

import livepay
from livepay.testing import SimulatedOrchestrator

SESSIONS = 1_000
BATCH = 50
FUNDED_S = 20.0


@pytest.mark.slow
async def test_a_thousand_sessions_from_one_process_do_not_lapse():
    async with SimulatedOrchestrator() as sim:
        sessions: list[livepay.Session] = []
        try:
            started = time.monotonic()
            for _ in range(0, SESSIONS, BATCH):
                batch = [livepay.reserve(sim.runner_url, signer_url=sim.signer_url) for _ in range(BATCH)]
                sessions += await asyncio.wait_for(asyncio.gather(*batch), 60)
            reserved_in = time.monotonic() - started
            assert len({s.session_id for s in sessions}) == SESSIONS
            assert sim.state()["sessions_created"] == SESSIONS

            await asyncio.sleep(FUNDED_S)  # The duration is the point: four debits and more.

            released = [(s.session_id, s.release_reason) for s in sessions if s.released]
            assert released == [], f"{len(released)} sessions released, e.g. {released[:3]}"
            state = sim.state()
            assert state["released_unpaid"] == 0
            assert state["released_restart"] == 0 and state["released_stopped"] == 0
            inactive = [m["id"] for m in state["sessions"] if not m["active"]]
            assert inactive == [], f"{len(inactive)} sessions released by the model"
            stats = [s.stats() for s in sessions]
            assert sum(x["lapses"] for x in stats) == 0
            assert sum(x["at_risk"] for x in stats) == 0
            # Every session was paid on schedule, not only kept alive by its prepay.
            assert min(x["payments_accepted"] for x in stats) >= 4, (reserved_in, min(x["payments_accepted"] for x in stats))
            assert state["signer_400"] == 0
        finally:
            reasons = await asyncio.wait_for(asyncio.gather(*(s.aclose() for s in sessions)), 120)
        assert set(reasons) <= {"closed by the client"}
        assert sim.state()["released_stopped"] == SESSIONS
