"""One definition of "latest snapshot wins": the order of an object's snapshots and the facts
taken from the latest of them, as DuckDB SQL. The store's views (`runs`, `run_steps`,
`run_transitions`) and the reports' per-run reduction (analysis/facts.py) are both built here.

Order. A run's (or step's) snapshots are ordered by observation time (`observed_at`, the proxy's
clock), then by the exchange (`request_started_at`: of two exchanges that observed the object in
the same microsecond, the one that started later saw it later), then by the position in the
exchange (`seq`: the SSE event number, or the index in a list response; every event of a stream
read from a file has the same `observed_at`). NULLs sort last in each field. `ORDER_KEY` packs
the three into one HUGEINT (`observed_at` in microseconds, below 2^52 until the year 2112, times
2^74; `request_started_at` times 2^22; `seq`, below 2^22, in the low bits; a NULL takes its
field's largest value) and is the only way snapshots are ordered: `arg_max(..., k)` for the
facts, `ORDER BY k` for the transitions, so views and reports pick the same snapshot. One integer
compares fast: per-model token sums over 1M runs took 1.5 s of CPU with it, 3.0 s with the
`(observed_at, request_started_at, exchange_id, seq)` struct the views used to order by, and
2.5 s with DuckDB's `create_sort_key` of those four. Computed below the window (`keyed`), `k`
sorts in as many instructions as the three columns do (written inline in ORDER BY: 4% more).

No `exchange_id` tie-breaker. The views used to end the order with `exchange_id`, for snapshots
of one run from two exchanges that started *and* observed it in the same microsecond, at the
same position. Nothing recorded says which of those is later (a random flow id is no evidence).
Any tie-breaker from that column means reading the `exchange_id` strings of every snapshot, and
that alone added 0.4 s of CPU to the 1.5 s above (hashing it into the key's spare bits: 0.55 s);
it does not fit beside two microsecond times in 128 bits anyway. So the order stops at `seq`,
for views and reports alike: a total order for every two snapshots that differ in any of the
three fields. A live proxy does not produce a full tie (two requests for one run, each started
and answered within the same microsecond); a HAR file, whose times are milliseconds, can, and
then either snapshot may count as the later one.

Facts. `latest(expr)` is the value in the latest snapshot, NULL included (a run's `completed_at`
is NULL until it completes); `latest_known(expr)` the latest non-NULL value, for identity columns
that never change within an object, so a partial observation that lacks one does not blank it;
`latest_with_usage(expr)` the value in the latest snapshot carrying `usage` (NULL when none
does). `RUN_FACTS` and `STEP_FACTS` name every fact once; `per_object` reduces a snapshot table
to one row per object with the facts asked for, so a report computes only what it reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


def order_key(alias: str = "") -> str:
    """ORDER_KEY over the columns of table alias `alias` (none: unqualified)."""
    q = f"{alias}." if alias else ""
    return (
        f"(coalesce(epoch_us({q}observed_at), 4503599627370496)::HUGEINT * 18889465931478580854784"
        f" + coalesce(epoch_us({q}request_started_at), 4503599627370495)::HUGEINT * 4194304"
        f" + coalesce({q}seq, 4194303))"
    )


ORDER_KEY = order_key()


@dataclass(frozen=True)
class Fact:
    """One per-object fact: `expr` over a snapshot, and how the snapshots' values reduce to one."""

    kind: str  # latest | known | usage | aggregate (expr is then the aggregate itself)
    expr: str
    # For an aggregate: how its value over earlier snapshots, {old}, and over later ones, {new}, combine.
    merge: str = ""

    def aggregate(self) -> str:
        """The DuckDB aggregate over one object's keyed snapshots (`k` is ORDER_KEY)."""
        return {
            "latest": f"arg_max_null({self.expr}, k)",
            "known": f"arg_max({self.expr}, k)",  # arg_max skips NULL values
            "usage": f"arg_max_null({self.expr}, k) FILTER (WHERE has_usage)",
            "aggregate": self.expr,
        }[self.kind]

    def merged(self, old: str, new: str, new_with_usage: str) -> str:
        """The fact over all of an object's snapshots, from its value over the earlier ones (`old`,
        NULL when there were none) and over later ones (`new`; `new_with_usage`: whether any of
        those carried usage). store/derived.py keeps each run's facts this way, batch by batch."""
        return {
            "latest": new,
            "known": f"coalesce({new}, {old})",
            "usage": f"CASE WHEN coalesce({new_with_usage}, false) THEN {new} ELSE {old} END",
            "aggregate": self.merge.format(old=old, new=new),
        }[self.kind]


def latest(expr: str) -> Fact:
    """The value of `expr` in the latest snapshot, NULL included."""
    return Fact("latest", expr)


def latest_known(expr: str) -> Fact:
    """The value of `expr` in the latest snapshot where it is not NULL (identity columns)."""
    return Fact("known", expr)


def latest_with_usage(expr: str) -> Fact:
    """The value of `expr` in the latest snapshot carrying usage; NULL when none does."""
    return Fact("usage", expr)


def usage_facts(columns: Iterable[str]) -> dict[str, Fact]:
    """Token counts from the latest snapshot carrying usage, one aggregate per count (23% fewer
    instructions than one arg_max over a struct of them, which builds the struct for every
    snapshot), and `with_usage`: whether any snapshot carried usage."""
    return {
        **{column: latest_with_usage(column) for column in columns},
        "with_usage": Fact("aggregate", "bool_or(has_usage)", "coalesce({old}, false) OR {new}"),
    }


TOKENS = ("prompt_tokens", "completion_tokens", "total_tokens")
RESPONSE_TOKENS = ("input_tokens", "output_tokens", "total_tokens", "cached_tokens", "reasoning_tokens")
_OBSERVED = {
    "first_observed_at": Fact("aggregate", "min(observed_at)", "least({old}, {new})"),
    "last_observed_at": Fact("aggregate", "max(observed_at)", "greatest({old}, {new})"),
    "snapshots": Fact("aggregate", "count(*)", "coalesce({old}, 0) + {new}"),
    "last_exchange_id": latest("exchange_id"),
}

RUN_FACTS: dict[str, Fact] = {
    "thread_id": latest_known("thread_id"),
    "assistant_id": latest_known("assistant_id"),
    "model": latest_known("model"),
    **{
        column: latest(column)
        for column in (
            "status",
            "created_at",
            "started_at",
            "completed_at",
            "expires_at",
            "cancelled_at",
            "failed_at",
            "last_error_code",
            "last_error_message",
            "incomplete_reason",
            "required_action",
        )
    },
    # When the run ended, by whichever terminal timestamp its latest snapshot has.
    "ended_at": latest(
        "coalesce(completed_at, failed_at, cancelled_at, CASE WHEN status = 'expired' THEN expires_at END)"
    ),
    **usage_facts(TOKENS),
    **_OBSERVED,
}

STEP_FACTS: dict[str, Fact] = {
    "run_id": latest_known("run_id"),
    "thread_id": latest_known("thread_id"),
    "assistant_id": latest_known("assistant_id"),
    "type": latest_known("type"),
    **{
        column: latest(column)
        for column in (
            "status",
            "created_at",
            "completed_at",
            "cancelled_at",
            "failed_at",
            "expired_at",
            "last_error_code",
            "step_details",
        )
    },
    "duration_ms": latest("(epoch_us(completed_at) - epoch_us(created_at)) / 1000.0"),
    **usage_facts(TOKENS),
    **_OBSERVED,
}

# A response of the Responses API, by the runs' rules (its snapshots: response_snapshots).
RESPONSE_FACTS: dict[str, Fact] = {
    **{
        column: latest_known(column)
        for column in ("conversation_id", "previous_response_id", "model", "background", "created_at")
    },
    **{
        column: latest(column)
        for column in ("status", "completed_at", "error_code", "error_message", "incomplete_reason")
    },
    **usage_facts(RESPONSE_TOKENS),
    **_OBSERVED,
}

# From this many `latest` facts on, one arg_max over a struct of them costs less than one
# arg_max each (all of `runs`, 12 columns: 5.9 s of CPU instead of 9.3 s on the benchmark
# store); for up to three (what a report asks for), separate aggregates cost less (1.4 s vs 1.6 s).
_PACK_FROM = 4


def keyed(table: str, where: str = "true") -> str:
    """The snapshots of `table` that pass `where`, each with its order key as `k`."""
    return f"(SELECT *, {ORDER_KEY} AS k FROM {table} WHERE {where})"


def per_object(
    table: str, by: str, facts: Mapping[str, Fact], names: Iterable[str] | None = None, where: str = "true"
) -> str:
    """SELECT one row per `by` (run_id, step_id or response_id, never NULL) of `table`'s snapshots passing
    `where`, with column `by` and one column per fact in `names` (default: all of `facts`)."""
    wanted = {name: facts[name] for name in (facts if names is None else names)}
    packed = [name for name, fact in wanted.items() if fact.kind == "latest"]
    if len(packed) < _PACK_FROM:
        packed = []
    struct = "{" + ", ".join(f"'{name}': {wanted[name].expr}" for name in packed) + "}"
    inner = [f"{fact.aggregate()} AS {name}" for name, fact in wanted.items() if name not in packed]
    inner += [f"{latest(struct).aggregate()} AS _latest"] if packed else []
    outer = [f"_latest.{name} AS {name}" if name in packed else name for name in wanted]
    return f"""SELECT {", ".join([by, *outer])} FROM (
            SELECT {", ".join([by, *inner])}
            FROM {keyed(table, f"{by} IS NOT NULL AND ({where})")}
            GROUP BY {by}
        )"""


def status_changes(
    where: str = "true",
    *,
    first: bool = False,
    table: str = "run_snapshots",
    by: str = "run_id",
    carry: Iterable[str] = (),
    previous: Iterable[str] = (),
) -> str:
    """SELECT the snapshots whose status differs from the object's previous status, in snapshot
    order: `by` (run_id), from_status, to_status, observed_at, k. These are the run's (or, with
    `table="response_snapshots", by="response_id"`, the response's) transitions; with `first`,
    each object's first observed status comes too (from_status NULL), for spells of a status.
    `carry` names more columns of the snapshot to keep (`name` or `expr AS name`); `previous`
    names columns of the snapshot just before, kept as `previous_<name>` (the last observation
    of the status left).

    A status is the object's own `status` field; snapshots without one are not observations of
    a status, and repeated polls of one status compare equal. Whatever order was observed
    (requires_action -> queued, queued -> completed) is kept.
    """
    # `<>` alone where the first observation is not wanted: a NULL-aware test of every snapshot
    # cost 3% more instructions on the transitions report.
    change = "from_status <> to_status"
    if first:
        change = f"from_status IS NULL OR {change}"
    window = f"OVER (PARTITION BY {by} ORDER BY k)"
    extra = "".join(f", {c}" for c in carry) + "".join(f", lag({c}) {window} AS previous_{c}" for c in previous)
    return f"""SELECT * FROM (
            SELECT {by}, lag(status) {window} AS from_status, status AS to_status, observed_at, k{extra}
            FROM {keyed(table, f"{by} IS NOT NULL AND status IS NOT NULL AND ({where})")}
        ) WHERE {change}"""
