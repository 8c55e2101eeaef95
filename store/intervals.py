"""`run_status_intervals`: every stay of a run in a status, with the best estimate of when it began
and ended and how sure that estimate is. Built on store/latest.py's snapshot order
(`status_changes`: consecutive distinct statuses in `ORDER_KEY` order), so its visits are exactly
the spells `run_transitions` separates.

Observations. Every snapshot of a run that carries a status is an observation at a time on the
proxy's clock (`observed_at`): an SSE event's arrival, or, for a JSON response (create, poll,
submit, cancel, list item), the moment the whole response had arrived. Response times on both
sides of a boundary, never a request time for one and a response time for the other: the
server-to-proxy delay then shifts both ends alike and cancels out of the midpoint.

A boundary (a visit's start) lies in (earliest, latest]:
- latest is the first observation of the new status;
- earliest is the last observation of the old status;
- a POST that causes the transition, seen as the exchange that first shows the new status,
  bounds it on both sides: createRun / createThreadAndRun start the first visit,
  submitToolOutputsToRun ends requires_action, cancelRun starts cancelling (or cancelled). The
  change happened after the POST's request started (earliest is raised to it) and before its
  response headers arrived (latest is lowered to them: the HTTP status a server answers with
  says whether it made the change, so it made it first). This holds for a streamed POST too:
  its first events come after its headers;
- a stream read from a file (no per-event arrival times: its exchange has no `first_byte_at`)
  only says the status held somewhere between the response's start and its end, so earliest
  never exceeds that stream's response start;
- a run first seen later than its creation (a poll, a list) has a first visit that began when
  the run was created: earliest is the API's `created_at` (for a terminal first status, the
  second it names, below) when it is not after that first sighting; otherwise nothing bounds
  it (earliest NULL: the visit starts at its first sighting, uncertainty NULL).

The estimate (`entered_at`) and its `entered_uncertainty_ms` (the most it can be off):
- new status first seen in a live SSE event of a stream that did not cause it: its arrival;
  the uncertainty is `SSE_MS`, the server-to-proxy delivery time of one event on a loopback or
  LAN hop (well under 1 ms on an idle machine, a few ms under load), never more than the gap
  to earliest;
- new status caused by the POST that first showed it: its response headers' arrival (latest),
  uncertainty the whole width of (earliest, latest]. A response time, like every other
  estimate here, so the server-to-proxy delay cancels out of a stay's length; the request's
  way in (the proxy's own work before it forwards, the server's queue) is the longer and more
  variable leg. Measured against the simulator (streamed creates and submits) on this
  project's 2 shared cores at load average 5: the headers came 0.3-5.7 ms after the change
  (median 0.5), the middle of request start and headers 0.8-4.2 ms before it; at load 9 one
  middle was 31 ms early (the headers 5.5 ms late), one set of headers 17 ms late;
- otherwise the middle of (earliest, latest], uncertainty half its width (for a status first
  seen in a poll, half the poll gap; a transition is as likely anywhere in the gap);
- the API's own timestamps are whole seconds: a bound, never the estimate, and only where they
  are finer than the observations. When (earliest, latest] is wider than one second, the second
  the API names for the new status (`completed_at`, `failed_at`, `cancelled_at`, `expires_at`
  for expired, `created_at` for a first visit in queued) narrows it to its overlap with
  [second, second + 1 s), if they overlap at all. Under a second they are not used: the overlap
  could only trim a fraction of the gap, and a server clock a few hundred ms off the proxy's
  would trim the wrong side with nothing to show it. `started_at` is not used (which turn it
  marks differs between servers).

A stay: `left_at` is the next visit's `entered_at` (NULL for the last visit: a terminal status,
or a stay still open when the recording ended), `duration_ms = left_at - entered_at`, and
`uncertainty_ms` the sum of its two boundaries' uncertainties (NULL when either is unknown).
So a run's stays add up exactly to its observed end-to-end time (last `entered_at` minus the
first). Whatever order was observed is kept, as in `run_transitions`. A status no observation
saw (polls that skip in_progress) has no stay: its time is in its neighbours'.

Beyond the contract columns (`run_id, visit, status, entered_at, left_at, duration_ms,
uncertainty_ms`), the evidence: `from_status`; `entered_earliest` / `entered_latest` (the
bounds above); `entered_uncertainty_ms` / `left_uncertainty_ms` (each boundary's share);
`entered_evidence` (what decided the start: sse | create | created_at | first_seen | poll |
submit | cancel | stream_file | api_seconds) and `left_evidence` (the next visit's).

Cost. One window over the snapshots (the one `run_transitions` needs) carrying the columns the
rules read, then a join with the few exchanges that can bound a change (creates, submits,
cancels, streams). The bounds are MATERIALIZED: DuckDB otherwise inlines the `lo`/`hi` CASEs
into each of their many later uses (measured on the 1M-run benchmark store: 19 s of CPU for
the boundaries, 11 s materialized, 8 s for the window and join alone). The window numbers the
snapshots (`n`, a BIGINT), and visits are ordered by it afterwards instead of by the HUGEINT
order key: narrower to group and sort, and the same order the window used. Only a change that
can read its exchange (an SSE event, a run's first status, a change from requires_action or to
cancelling/cancelled) probes the join; the others carry a NULL key. On the 1M-run store the
window (with the columns it carries) is ~8.5 s of CPU of the boundaries' ~10.5 s, the join ~2 s:
the window is the floor of computing them at all. So the store keeps them: the writer computes
each batch's boundaries from the batch and each run's last observation (store/derived.py), and
reports and the `run_status_intervals` view of a store file read the table; this SQL over every
snapshot remains the definition, what several stores read as one compute, and what a rebuild runs.
"""

from __future__ import annotations

from runtap.store.latest import status_changes

SSE_MS = 5.0  # the uncertainty of a status first seen in a live SSE event
CREATE_OPERATIONS = ("createRun", "createThreadAndRun")
# Statuses a run ends in; the API names the second of the first four (not of incomplete).
TERMINAL = ("completed", "failed", "cancelled", "expired", "incomplete")
# The statuses whose time `report durations` gives (a run's stays in one of them, summed).
STAY_STATUSES = ("queued", "in_progress", "requires_action", "cancelling")
_CREATES = ", ".join(f"'{op}'" for op in CREATE_OPERATIONS)
_TERMINAL = ", ".join(f"'{s}'" for s in TERMINAL)
_SECOND_NAMED = ", ".join(f"'{s}'" for s in TERMINAL[:4])
SECOND_US = 1_000_000

# Per snapshot, before the window sorts them: whether it is an SSE event, and the API's second
# for its status (the terminal timestamp for a terminal status, else created_at), as epoch
# microseconds: one narrow column instead of five timestamps carried through the sort.
OBSERVATION_COLUMNS = """run_id, status, observed_at, request_started_at, seq, exchange_id, source = 'sse' AS sse,
        epoch_us(CASE status WHEN 'completed' THEN completed_at WHEN 'failed' THEN failed_at
                 WHEN 'cancelled' THEN cancelled_at WHEN 'expired' THEN expires_at ELSE created_at END) AS api_us"""
_OBSERVATIONS = f"(SELECT {OBSERVATION_COLUMNS} FROM run_snapshots)"


# What an observation's exchange says: whether it created the run, submitted tool outputs or
# cancelled it (and when its request started), and whether its SSE events carry arrival times.
def _exchanges(source: str) -> str:
    return f"""(SELECT exchange_id, operation IN ({_CREATES}) AS creates,
        operation = 'submitToolOutputsToRun' AS submits, operation = 'cancelRun' AS cancels,
        epoch_us(request_started_at) AS request_us, epoch_us(response_started_at) AS response_us,
        first_byte_at IS NOT NULL AS tapped
    FROM {source} WHERE operation IN ({_CREATES}, 'submitToolOutputsToRun', 'cancelRun') OR streamed)"""


# Only these changes read their exchange (an SSE event's tap, the POST that may have caused the
# change); the others join with a NULL key, which skips the hash probe.
_MAY_USE_EXCHANGE = (
    "sse OR from_status IS NULL OR from_status = 'requires_action' OR to_status IN ('cancelling', 'cancelled')"
)


def status_boundaries_sql(where: str = "true", observations: str | None = None, exchanges: str = "exchanges") -> str:
    """SELECT one row per visit of a run to a status, at its start: run_id, n (the position of the
    visit's first observation among the run's snapshots with a status, 1 for the first), status,
    from_status, evidence, lo_us and hi_us (where the visit began: (lo, hi], epoch microseconds),
    at_us (the estimate) and uncertainty_ms.

    `observations`: a FROM item to read instead of every run snapshot (store/derived.py, which
    continues runs already seen): OBSERVATION_COLUMNS plus `tail` (the run's last observation
    already accounted for: it gives the next change its previous status and time, and no row)
    and `n_base` (the run's count of observations before the first one read, minus the tail);
    `exchanges`: a FROM item holding (at least) the exchanges of those observations."""
    number = "row_number() OVER (PARTITION BY run_id ORDER BY k) AS n"
    changes = status_changes(
        where,
        first=True,
        table=observations or _OBSERVATIONS,
        carry=("sse", "exchange_id", "api_us", *((f"n_base + {number}", "tail") if observations else (number,))),
        previous=("observed_at",),
    )
    return f"""
    WITH seen AS (  -- each visit's first observation, and what its exchange says
        SELECT run_id, n, to_status AS status, from_status, api_us, from_status IS NULL AS first,
               epoch_us(observed_at) AS seen_us, epoch_us(previous_observed_at) AS prev_us,
               sse AND coalesce(tapped, false) AS tapped_sse, sse AND NOT coalesce(tapped, false) AS file,
               coalesce(creates, false) AS creates, request_us, response_us,
               coalesce(from_status = 'requires_action' AND submits
                        AND to_status NOT IN ('expired', 'cancelling', 'cancelled'), false) AS submitted,
               coalesce(cancels AND to_status IN ('cancelling', 'cancelled'), false) AS cancelled
        FROM ({changes}) c
        LEFT JOIN {_exchanges(exchanges)} e ON e.exchange_id = CASE WHEN {_MAY_USE_EXCHANGE} THEN c.exchange_id END
        {"WHERE NOT tail" if observations else ""}
    ), caused AS (  -- whether the exchange that first showed the status is the POST that caused it
        SELECT *, (first AND creates) OR submitted OR cancelled AS by_post FROM seen
    ), bounded AS MATERIALIZED (  -- (lo, hi] from the observations and the POST that caused the change
        SELECT run_id, n, status, from_status, first, creates, submitted, cancelled, file, api_us, by_post,
            tapped_sse AND NOT by_post AS live,
            CASE WHEN by_post THEN least(seen_us, response_us) ELSE seen_us END AS hi,
            CASE WHEN by_post THEN greatest(request_us, prev_us) WHEN first THEN
                      CASE WHEN api_us <= seen_us THEN api_us END
                 ELSE CASE WHEN file THEN least(prev_us, response_us) ELSE prev_us END END AS lo,
            NOT (tapped_sse AND NOT by_post) AND (status IN ({_SECOND_NAMED}) OR (first AND status = 'queued'))
                AS api_names_it
        FROM caused
    ), narrowed AS (  -- a gap wider than a second that overlaps the API's second for the new status
        SELECT *, coalesce(api_names_it AND hi - lo > {SECOND_US} AND api_us < hi AND api_us + {SECOND_US} > lo,
                           false) AS by_api
        FROM bounded
    ), bounds AS (
        SELECT run_id, n, status, from_status, live, by_post,
            CASE WHEN live THEN 'sse' WHEN lo IS NULL THEN 'first_seen' WHEN by_api THEN 'api_seconds'
                 WHEN first THEN CASE WHEN creates THEN 'create' ELSE 'created_at' END
                 WHEN submitted THEN 'submit' WHEN cancelled THEN 'cancel' WHEN file THEN 'stream_file'
                 ELSE 'poll' END AS evidence,
            CASE WHEN by_api THEN greatest(lo, api_us) ELSE lo END AS lo_us,
            CASE WHEN by_api THEN least(hi, api_us + {SECOND_US}) ELSE hi END AS hi_us
        FROM narrowed
    )
    SELECT run_id, n, status, from_status, evidence, lo_us, hi_us,
           CASE WHEN live OR by_post OR lo_us IS NULL THEN hi_us ELSE (lo_us + hi_us) // 2 END AS at_us,
           CASE WHEN live THEN least({SSE_MS}, coalesce((hi_us - lo_us) / 1000.0, {SSE_MS}))
                WHEN by_post THEN (hi_us - lo_us) / 1000.0 ELSE (hi_us - lo_us) / 2000.0 END AS uncertainty_ms
    FROM bounds"""


def run_status_intervals_sql(where: str = "true", boundaries: str | None = None) -> str:
    """SELECT the stays of the runs whose snapshots pass `where` (see the module docstring);
    `boundaries`: a FROM item already holding those runs' `status_boundaries_sql` rows."""
    return f"""
    SELECT run_id, row_number() OVER stays AS visit, status,
           make_timestamptz(at_us) AS entered_at, make_timestamptz(lead(at_us) OVER stays) AS left_at,
           (lead(at_us) OVER stays - at_us) / 1000.0 AS duration_ms,
           uncertainty_ms + lead(uncertainty_ms) OVER stays AS uncertainty_ms,
           from_status, make_timestamptz(lo_us) AS entered_earliest, make_timestamptz(hi_us) AS entered_latest,
           uncertainty_ms AS entered_uncertainty_ms, evidence AS entered_evidence,
           lead(uncertainty_ms) OVER stays AS left_uncertainty_ms, lead(evidence) OVER stays AS left_evidence
    FROM {boundaries or f"({status_boundaries_sql(where)})"}
    WINDOW stays AS (PARTITION BY run_id ORDER BY n)
    """


def stay_accumulators_sql(boundaries: str) -> str:
    """SELECT per run of FROM item `boundaries` (`status_boundaries_sql`'s rows) what its stay
    totals are made of: its first and last visit's status, start and uncertainty
    (`first_status, first_at, first_u, last_status, last_at, last_u`) and, for each s of
    STAY_STATUSES, `s_net` (the starts of the visits that left s minus those of the visits in s),
    `s_left` (how many left s) and `s_u` (their boundaries' uncertainties summed). Sums and counts
    add up and first/last combine, batch by batch (store/derived.py keeps them per run)."""
    sums = ", ".join(
        f"sum(CASE WHEN from_status = '{s}' THEN at_us WHEN status = '{s}' THEN -at_us END) AS {s}_net, "
        f"count(*) FILTER (WHERE from_status = '{s}') AS {s}_left, "
        f"sum(uncertainty_ms) FILTER (WHERE from_status = '{s}' OR status = '{s}') AS {s}_u"
        for s in STAY_STATUSES
    )
    # arg_min/arg_max skip NULLs: -1 keeps an unknown uncertainty (never negative) in place
    return f"""SELECT run_id, arg_min(status, n) AS first_status, arg_min(at_us, n) AS first_at,
                     nullif(arg_min(coalesce(uncertainty_ms, -1), n), -1) AS first_u,
                     arg_max(status, n) AS last_status, arg_max(at_us, n) AS last_at,
                     nullif(arg_max(coalesce(uncertainty_ms, -1), n), -1) AS last_u, {sums}
              FROM {boundaries} GROUP BY run_id"""


def stay_totals_sql(
    where: str = "true", boundaries: str | None = None, accumulators: str | None = None, columns: str = "run_id"
) -> str:
    """SELECT per run (of the snapshots passing `where`): `<status>_ms` and
    `<status>_uncertainty_ms` for each of STAY_STATUSES (the run's closed stays in the status
    summed, with their uncertainties summed; NULL when it never left the status), end_to_end_ms
    and end_to_end_uncertainty_ms (first stay's start to its terminal status; NULL unless the run
    was seen from a bounded start to its end). The same figures as summing `run_status_intervals`.

    A visit ends where the next begins, so a run's time in status s is the sum of the starts of
    the visits that left s (from_status = s) minus the starts of its visits in s, plus the start
    of its last visit when that is still in s: one GROUP BY over the boundaries
    (`stay_accumulators_sql`), no second window to pair each visit with the next. `boundaries`: a
    FROM item that already holds `status_boundaries_sql`'s rows, read instead of computing them;
    `accumulators`: one that already holds `stay_accumulators_sql`'s rows (then `where` and
    `boundaries` are not read); `columns`: what else to select from that source besides the totals
    (run_state holds each run's facts beside its accumulators).
    """
    parts = []
    for s in STAY_STATUSES:
        open_ = f"CASE WHEN last_status = '{s}' THEN"
        parts.append(
            f"CASE WHEN {s}_left > 0 THEN ({s}_net + {open_} last_at ELSE 0 END) / 1000.0 END AS {s}_ms, "
            f"CASE WHEN {s}_left > 0 AND NOT (first_status = '{s}' AND first_u IS NULL) "
            f"THEN {s}_u - {open_} coalesce(last_u, 0) ELSE 0 END END AS {s}_uncertainty_ms"
        )
    ended = f"last_status IN ({_TERMINAL}) AND first_status NOT IN ({_TERMINAL}) AND first_u IS NOT NULL"
    source = accumulators or f"({stay_accumulators_sql(boundaries or f'({status_boundaries_sql(where)})')})"
    return f"""
        SELECT {columns}, {", ".join(parts)},
               CASE WHEN {ended} THEN (last_at - first_at) / 1000.0 END AS end_to_end_ms,
               CASE WHEN {ended} THEN first_u + last_u END AS end_to_end_uncertainty_ms
        FROM {source}"""
