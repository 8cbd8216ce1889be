"""1,000 sessions from one Python process: the process's CPU and memory while livepay funds them.

    python bench/thousand.py [--sessions 1000] [--seconds 30]

The model runs in a child process (``funding.ModelProcess``), so the figures are the client's
own: CPU seconds per wall second, CPU per payment cycle (signer call), the peak resident set
(``ru_maxrss``), and the sessions the model released (should be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time

import livepay
from funding import ModelProcess


async def main(sessions: int, seconds: float) -> None:
    async with ModelProcess(2.5, 1) as sim:
        t = time.monotonic()
        held = await asyncio.gather(
            *(livepay.reserve(sim.runner_url, signer_url=sim.signer_url) for _ in range(sessions))
        )
        reserve_s = time.monotonic() - t
        before = sim.state()
        cpu0, t0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
        after = sim.state()
        calls = after["signer_calls"] - before["signer_calls"]
        released = sum(1 for s in held if s.released)
        for s in held:
            await s.aclose()
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{sessions} sessions reserved in {reserve_s:.1f} s; over {wall:.0f} s: "
            f"{cpu / wall * 100:.1f} % of a core, {calls} signer calls, "
            f"{cpu * 1e3 / max(calls, 1):.3f} ms CPU per cycle, peak RSS {rss_mb:.0f} MB, "
            f"released by the model {released}, released_unpaid {after['released_unpaid']}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.seconds))
