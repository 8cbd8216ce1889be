"""Type stubs of livepay's native module (the Rust engine). Use the ``livepay`` package's API."""

from collections.abc import Awaitable

class Session:
    session_id: str
    control_url: str
    app_url: str
    @property
    def released(self) -> bool: ...
    @property
    def release_reason(self) -> str | None: ...
    @property
    def handed_off(self) -> bool: ...
    @property
    def runway(self) -> float: ...
    @property
    def spend_wei(self) -> int | None: ...
    def stats_json(self) -> str: ...
    def next_event(self) -> Awaitable[str | None]: ...
    def wait_released(self) -> Awaitable[str]: ...
    def stop_payments(self) -> Awaitable[tuple[str, int]]: ...
    def aclose(self) -> Awaitable[str]: ...

class Simulation:
    url: str
    signer_url: str
    runner_url: str
    discovery_url: str
    def release(self, session_id: str) -> bool: ...
    def state_json(self) -> str: ...
    def shutdown(self) -> Awaitable[None]: ...

def reserve(
    runner_url: str,
    signer_url: str,
    signer_headers: list[tuple[str, str]],
    payment_type: str,
    interval: float,
    max_payments: int | None,
    max_funded_s: float | None,
    app: str | None,
) -> Awaitable[Session]: ...
def adopt_challenge(
    control_url: str,
    app_url: str,
    session_id: str | None,
    payment_params: str,
    manifest_id: str,
    payment_url: str,
    signer_url: str,
    signer_headers: list[tuple[str, str]],
    signer_state: str | None,
    payment_type: str,
    reserved_at: float | None,
    interval: float,
    max_payments: int | None,
    max_funded_s: float | None,
    app: str | None,
) -> Session: ...
def adopt_snapshot(
    snapshot: str,
    taken_at_ms: int,
    signer_url: str,
    signer_headers: list[tuple[str, str]],
    interval: float,
    max_payments: int | None,
    max_funded_s: float | None,
) -> Session: ...
def simulate(
    dialect: str, ticket_seconds: float, profile: str, seed: int, run_seconds: float
) -> Awaitable[Simulation]: ...
def reset_log_levels() -> None: ...
