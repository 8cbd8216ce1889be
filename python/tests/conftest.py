"""Shared helpers of livepay's pytest suite.

Everything runs against ``livepay.testing.SimulatedOrchestrator``: the project's model of an
orchestrator and its remote signer, served on loopback in real time (debits every 5 s, a 10 s
prepay). Tests synchronise on events (the N-th ``payment_accepted``...), never on bare sleeps,
except where a duration is what is tested.

Helpers:

- :class:`EventLog` reads a session's events in the background and lets a test wait for a
  condition on them;
- :func:`reserve_by_hand` reserves a session the way any other client (the SDK) would, without
  livepay, so that ``adopt_challenge`` can be tested without the SDK;
- :class:`FaultProxy` is a small HTTP proxy in front of the model's orchestrator that answers
  chosen requests itself (a 403 or a 409 to a payment: the model has no knob for those) and
  counts every request it sees.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# `python -m pytest` run from python/ puts python/ itself first on sys.path, and python/livepay/
# is the package's source tree, without the compiled `_native` (maturin builds it into the
# wheel): `import livepay` would then fail with a circular-import error. Test the installed
# wheel instead, unless the source tree holds a built extension (`maturin develop`).
_SOURCE_ROOT = Path(__file__).resolve().parent.parent
if not any(p.suffix in (".so", ".pyd") for p in (_SOURCE_ROOT / "livepay").glob("_native*")):
    sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != _SOURCE_ROOT]

import livepay  # noqa: E402
from livepay.testing import SimulatedOrchestrator  # noqa: E402

# A failure guard, never a synchronisation: the longest a single wait may take.
GUARD_S = 30.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow: long real-time tests (the 1,000-session run); selected by default, "
        "deselect with -m 'not slow'",
    )
    config.addinivalue_line("markers", "sdk: needs the official SDK (livepeer-gateway)")


# ---------------------------------------------------------------------------------------------
# Events


class EventLog:
    """Collects a session's events in a background task; ``wait_for`` a predicate over them."""

    def __init__(self, session: livepay.Session) -> None:
        self.session = session
        self.events: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.t0 = time.monotonic()
        self._changed = asyncio.Condition()
        self.done = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            async for event in self.session.events():
                async with self._changed:
                    self.events.append(event)
                    self.times.append(time.monotonic() - self.t0)
                    self._changed.notify_all()
        finally:
            async with self._changed:
                self.done = True
                self._changed.notify_all()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def count(self, kind: str) -> int:
        return len(self.of(kind))

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    async def wait_for(self, predicate: Callable[[EventLog], bool], timeout: float = GUARD_S) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self) or self.done)
            if not predicate(self):
                raise AssertionError(f"the event stream ended first: {self.events}")

        try:
            await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"not within {timeout} s; events so far: {self.events}") from None

    async def wait_count(self, kind: str, n: int = 1, timeout: float = GUARD_S) -> dict[str, Any]:
        await self.wait_for(lambda log: log.count(kind) >= n, timeout)
        return self.of(kind)[n - 1]

    async def finished(self, timeout: float = GUARD_S) -> None:
        """Waits until the stream ends (after ``released``, or once funding stopped here)."""
        await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def cancel(self) -> None:
        if not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


# ---------------------------------------------------------------------------------------------
# A reservation without livepay (what the SDK or any other client does)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _reserve_by_hand(runner_url: str, signer_url: str) -> dict[str, Any]:
    status, _, body = _post(f"{signer_url}/sign-orchestrator-info", b"{}", {"Content-Type": "application/json"})
    assert status == 200, (status, body)
    payer = json.loads(body)["address"]
    status, _, body = _post(runner_url, b"{}", {"Content-Type": "application/json", "Livepeer-Payer-Address": payer})
    assert status == 402, (status, body)
    challenge = json.loads(body)
    request = {"orchestrator": challenge["payment_params"], "type": "live", "ManifestID": challenge["manifest_id"]}
    status, _, body = _post(
        f"{signer_url}/generate-live-payment", json.dumps(request).encode(), {"Content-Type": "application/json"}
    )
    assert status == 200, (status, body)
    minted = json.loads(body)
    reserved_at = time.time()
    status, _, body = _post(
        runner_url,
        b"{}",
        {
            "Content-Type": "application/json",
            "Livepeer-Payer-Address": payer,
            "Livepeer-Payment": minted["payment"],
            "Livepeer-Segment": minted["segCreds"],
        },
    )
    assert status == 200, (status, body)
    created = json.loads(body)
    return {
        "challenge": challenge,
        "state": minted["state"],
        "created": created,
        "reserved_at": reserved_at,
        "payer": payer,
    }


async def reserve_by_hand(sim: SimulatedOrchestrator) -> dict[str, Any]:
    """Reserves a session on ``sim`` over plain HTTP: the 402, the signer, the paid retry.

    Returns the challenge, the signer state after the first payment, the reservation's answer
    (session_id, control_url, app_url) and the unix time it was paid.
    """
    return await asyncio.to_thread(_reserve_by_hand, sim.runner_url, sim.signer_url)


def rebase(url: str, origin: str) -> str:
    """``url`` with its origin replaced by ``origin``."""
    return re.sub(r"^https?://[^/]+", origin, url)


# ---------------------------------------------------------------------------------------------
# A proxy in front of the model's orchestrator


HANG_UP = object()


@dataclass
class Seen:
    method: str
    path: str
    status: int
    at: float


@dataclass(repr=False)
class FaultProxy:
    """An HTTP/1.1 proxy on loopback in front of ``target`` (an origin).

    ``rule(method, path)`` returns ``None`` to forward the request, ``(status, body)`` to
    answer it here, or ``HANG_UP`` to close the connection without an answer (a reset after the
    request was read). Every request is recorded in ``seen`` with the status the client got
    (0: no answer).
    Connections are closed after each answer (the client's pool reconnects).
    """

    target: str
    rule: Callable[[str, str], tuple[int, str] | None] = lambda method, path: None
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _server: asyncio.AbstractServer | None = None

    def __repr__(self) -> str:
        return f"<FaultProxy {self.url} -> {self.target}, {len(self.seen)} requests>"

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def count(self, method: str, suffix: str, status: int | None = None) -> int:
        return sum(
            1
            for s in self.seen
            if s.method == method and s.path.endswith(suffix) and (status is None or s.status == status)
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = [tuple(line.split(":", 1)) for line in lines[1:] if ":" in line]
            length = next((int(v) for k, v in headers if k.strip().lower() == "content-length"), 0)
            body = await reader.readexactly(length) if length else b""
            path = target.split("?", 1)[0]
            answer = self.rule(method, path)
            if answer is HANG_UP:
                self.seen.append(Seen(method, path, 0, time.monotonic()))
                return
            if answer is not None:
                status, text = answer
                payload = text.encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {len(payload)}\r\n"
                    f"connection: close\r\n\r\n".encode()
                    + payload
                )
            else:
                status, payload = await self._forward(method, target, headers, body)
            self.seen.append(Seen(method, path, status, time.monotonic()))
            if answer is None:
                writer.write(payload)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _forward(self, method: str, target: str, headers: list, body: bytes) -> tuple[int, bytes]:
        host, port = self.target.removeprefix("http://").split(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        kept = [
            (k, v)
            for k, v in headers
            if k.strip().lower() not in ("host", "connection", "keep-alive", "content-length")
        ]
        request = f"{method} {target} HTTP/1.1\r\nhost: {host}:{port}\r\nconnection: close\r\n"
        request += "".join(f"{k.strip()}: {v.strip()}\r\n" for k, v in kept)
        request += f"content-length: {len(body)}\r\n\r\n"
        up_writer.write(request.encode("latin-1") + body)
        await up_writer.drain()
        raw = await up_reader.read()
        up_writer.close()
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        out_headers = [
            line for line in lines[1:] if line.split(":", 1)[0].strip().lower() not in ("connection", "keep-alive")
        ]
        out = "\r\n".join([lines[0], *out_headers, "connection: close"]) + "\r\n\r\n"
        return status, out.encode("latin-1") + rest


# ---------------------------------------------------------------------------------------------
# Fault plans


def fault_plan(tmp_path: Any, name: str, toml: str) -> str:
    """Writes a fault plan (transport-mock's TOML) and returns its path, for ``profile=``."""
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\n' + textwrap.dedent(toml))
    return str(path)


def session_state(sim: SimulatedOrchestrator, session_id: str) -> dict[str, Any]:
    """The model's record of one session."""
    sessions = [s for s in sim.state()["sessions"] if s["id"] == session_id]
    assert sessions, f"the model has no session {session_id}"
    return sessions[0]


@pytest.fixture
async def sim():
    """A clean go-livepeer model (2.5 s tickets), started for one test."""
    async with SimulatedOrchestrator() as served:
        yield served


@pytest.fixture
async def closer():
    """Sessions appended here are closed after the test (before the test's ``sim`` stops, when
    the test asks for ``sim`` first), so that no session keeps paying into the next test."""
    sessions: list[livepay.Session] = []
    yield sessions
    for session in sessions:
        try:
            await asyncio.wait_for(session.aclose(), 10)
        except Exception:  # noqa: BLE001 - cleanup only
            pass


def adopt_by_hand(reserved: dict[str, Any], signer_url: str, origin: str | None = None, **kwargs: Any) -> livepay.Session:
    """``adopt_challenge`` of a :func:`reserve_by_hand` reservation; ``origin`` moves the control and
    payment URLs to another origin (a :class:`FaultProxy`)."""
    challenge, created = reserved["challenge"], reserved["created"]
    control_url, payment_url = created["control_url"], challenge["payment_url"]
    if origin is not None:
        control_url, payment_url = rebase(control_url, origin), rebase(payment_url, origin)
    options: dict[str, Any] = {
        "control_url": control_url,
        "app_url": created["app_url"],
        "session_id": created["session_id"],
        "payment_params": challenge["payment_params"],
        "manifest_id": challenge["manifest_id"],
        "payment_url": payment_url,
        "signer_url": signer_url,
        "signer_state": reserved["state"],
        "reserved_at": reserved["reserved_at"],
    }
    options.update(kwargs)
    return livepay.adopt_challenge(**options)
