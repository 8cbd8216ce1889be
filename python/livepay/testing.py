"""livepay's faithful model of an orchestrator and its remote signer, served on loopback, for
your own tests: no Rust toolchain, no network.

    async with livepay.testing.SimulatedOrchestrator(ticket_seconds=2.5) as sim:
        s = await livepay.reserve(sim.runner_url, signer_url=sim.signer_url)
        sim.release(s.session_id)          # a silent release, as a crashed runner
        print(await s.wait_released())

The model debits every 5 s on the real clock, releases a session on the first debit it cannot
cover, and answers like the chosen ``dialect`` (``go-livepeer``, ``go-livepeer-next``,
``livepeer-node``). ``profile`` names a fault profile (``clean``, ``flaky``,
``payment-503-mid``...; see ``livepay sim --help``) or a TOML file.
"""

from __future__ import annotations

import json
from typing import Any

from . import _native

__all__ = ["SimulatedOrchestrator"]


class SimulatedOrchestrator:
    """A served model; ``async with`` starts and stops it."""

    def __init__(
        self,
        dialect: str = "go-livepeer",
        ticket_seconds: float = 2.5,
        profile: str = "clean",
        seed: int = 1,
        run_seconds: float = 3600.0,
    ) -> None:
        self._args = (dialect, float(ticket_seconds), profile, int(seed), float(run_seconds))
        self._sim: _native.Simulation | None = None

    async def start(self) -> SimulatedOrchestrator:
        """Starts serving (``async with`` calls it)."""
        if self._sim is None:
            self._sim = await _native.simulate(*self._args)
        return self

    async def stop(self) -> None:
        """Stops serving."""
        if self._sim is not None:
            await self._sim.shutdown()
            self._sim = None

    async def __aenter__(self) -> SimulatedOrchestrator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _running(self) -> _native.Simulation:
        if self._sim is None:
            raise RuntimeError("livepay.testing: the simulated orchestrator is not started")
        return self._sim

    @property
    def url(self) -> str:
        """The orchestrator's base URL."""
        return self._running().url

    @property
    def signer_url(self) -> str:
        """The remote signer's base URL."""
        return self._running().signer_url

    @property
    def runner_url(self) -> str:
        """The reservation URL of its live runner."""
        return self._running().runner_url

    @property
    def discovery_url(self) -> str:
        """Its discovery URL (the official SDK's ``discovery_url``)."""
        return self._running().discovery_url

    def release(self, session_id: str) -> bool:
        """Releases ``session_id`` silently; its next payment gets a 404. Whether it was live."""
        return self._running().release(session_id)

    def state(self) -> dict[str, Any]:
        """The model's counters and sessions."""
        return json.loads(self._running().state_json())
