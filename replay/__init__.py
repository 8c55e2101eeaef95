"""`runtap replay`: send recorded sessions to another server and report regressions.

Data flows one way: `sessions` (load from the store, group into logical steps) -> `execute`
(send with httpx, ids rewritten by `idmap`) -> `observe` (reduce either answer to the same shape)
-> `matchers` (pure comparisons that say why) -> `runner` (sessions in parallel) -> `render`
(table, JSON, JUnit) and `results` (stored in the DuckDB file).
"""
