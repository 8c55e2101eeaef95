"""Per-run facts as DuckDB SQL: the `runs` view's "latest snapshot wins" reduction, built with
only the facts a report needs.

Every report input starts from this reduction of `run_snapshots` (10 rows a run, 10M rows on
the benchmark store), so its cost decides the reports' speed. Two things keep it cheap:
- each fact is its own aggregate, and an input asks only for the facts it groups or sums by
  (plus those its filters read): one shared per-run cube of ten facts, grouped by most of
  them, made `tokens` 4x slower than its SQL;
- `arg_max` orders by one packed HUGEINT, not by the views' struct key: 0.7 s of CPU instead of
  2.3 s for the same per-model token sums on 1M runs (measured on this machine, duckdb 2.0).
"""

from __future__ import annotations

from runtap.analysis.filters import Filters

TERMINAL = ("completed", "failed", "cancelled", "expired", "incomplete")

# Snapshot order (observed_at, request_started_at, seq), NULLs last like the views' ORDER BY,
# packed into one HUGEINT: observed_at in microseconds (below 2^52 until the year 2112) times
# 2^74, request_started_at times 2^22, seq in the low 22 bits (SSE positions < 4M); a NULL
# takes its field's largest value. The views' last tie-breaker, exchange_id, only decides
# between two exchanges that started in the same microsecond and observed the run in the same
# microsecond, which a proxy does not record.
ORDER_KEY = (
    "(coalesce(epoch_us(observed_at), 4503599627370496)::HUGEINT * 18889465931478580854784"
    " + coalesce(epoch_us(request_started_at), 4503599627370495)::HUGEINT * 4194304"
    " + coalesce(seq, 4194303))"
)
# The same order for window functions (DuckDB sorts NULLs last by default).
ORDER_BY = "observed_at, request_started_at, seq"

# A snapshot's token counts as one value, so one arg_max takes all three.
USAGE = "{'prompt_tokens': prompt_tokens, 'completion_tokens': completion_tokens, 'total_tokens': total_tokens}"

# Each fact's aggregate over one run's snapshots (`k` is ORDER_KEY). Identity columns never
# change within a run: a snapshot that lacks one (a partial observation) falls back to the
# latest that has it (as the views do). `usage` holds the three token counts of the latest
# snapshot carrying usage, NULL when none did (so count(usage) counts the runs with usage).
FACTS: dict[str, str] = {
    "thread_id": "arg_max(thread_id, k)",
    "assistant_id": "arg_max(assistant_id, k)",
    "model": "arg_max(model, k)",
    "status": "arg_max_null(status, k)",
    "created_at": "arg_max_null(created_at, k)",
    "started_at": "arg_max_null(started_at, k)",
    "ended_at": "arg_max_null(coalesce(completed_at, failed_at, cancelled_at,"
    " CASE WHEN status = 'expired' THEN expires_at END), k)",
    "last_error_code": "arg_max_null(last_error_code, k)",
    "incomplete_reason": "arg_max_null(incomplete_reason, k)",
    "usage": f"arg_max_null({USAGE}, k) FILTER (WHERE has_usage)",
    "first_observed_at": "min(observed_at)",
}


def matching_runs(facts: tuple[str, ...], filters: Filters) -> tuple[str, dict]:
    """A CTE `matching`: one row per run passing `filters`, with run_id and `facts`; and its params."""
    needed = [name for name in FACTS if name in facts or name in filters.run_facts]
    columns = "".join(f", {FACTS[name]} AS {name}" for name in needed)
    where, params = filters.run_where()
    sql = f"""matching AS (
        SELECT * FROM (
            SELECT run_id{columns}
            FROM (SELECT *, {ORDER_KEY} AS k FROM run_snapshots WHERE run_id IS NOT NULL)
            GROUP BY run_id
        ) WHERE {where}
    )"""
    return sql, params


def restrict(filters: Filters, column: str = "run_id") -> str:
    """A predicate keeping rows of runs in `matching`; `true` (and `matching` unused) without filters."""
    return f"{column} IN (SELECT run_id FROM matching)" if filters != Filters() else "true"
