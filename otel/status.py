"""A run's status stays as events on its `invoke_agent` span.

One `runtap.run.status` event where each stay begins: the first status seen, then every
observed transition (`run_transitions`: consecutive distinct statuses, proxy clock). Each event
carries the status entered and the one left. This is the one place that reads the stays:
when the store has a `run_status_intervals` view (status, entered_at, left_at, duration_ms,
uncertainty_ms), `status_stays` reads it instead and the events gain those durations, or
become child spans, without touching the rest of the span model.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.sdk.trace import Event


@dataclass(frozen=True)
class Stay:
    """A status a run entered at `entered_at` (ns), coming from `previous` (None: first seen)."""

    status: str
    entered_at: int
    previous: str | None


def status_stays(run: dict, transitions: list[dict]) -> list[Stay]:
    """The stays of one run, in order: its first observed status, then each transition's."""
    stays = []
    if run.get("first_status"):
        stays.append(Stay(run["first_status"], run["first_observed_at"], None))
    for t in sorted(transitions, key=lambda t: t["seq"]):
        stays.append(Stay(t["to_status"], t["observed_at"], t["from_status"]))
    return stays


def status_events(run: dict, transitions: list[dict]) -> list[Event]:
    """The span events of one run's status stays."""
    return [
        Event(
            "runtap.run.status",
            {"runtap.run.status": s.status, **({"runtap.run.status.previous": s.previous} if s.previous else {})},
            timestamp=s.entered_at,
        )
        for s in status_stays(run, transitions)
    ]
