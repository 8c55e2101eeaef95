"""`runtap replay`: send recorded sessions to another server and report regressions.

Built on `runtap.recordings` (loading, retried attempts, sessions by thread, the id mapper, tool
calls, the JSON diff). Data flows one way: `sessions` (recorded threads grouped into logical
steps) -> `execute` (send with httpx, ids rewritten by the session's `IdMap`) -> `observe`
(reduce either answer to the same `Outcome`) -> `matchers` (pure comparisons that say why) ->
`runner` (sessions in parallel) -> `render` (table, JSON, JUnit) and `results` (stored in the
DuckDB file).
"""
