"""A deterministic OpenAI-compatible Assistants runs API for tests, demos and replay targets.

Modules: `config` (SimConfig), `faults` (--fault syntax), `ids`, `behaviour` (outcomes, tool
calls and usage from seed + content), `objects` (API object builders), `state` (in-memory
store, pagination), `engine` (run life cycle and events), `sse`, `middleware`, `routes`,
`truth` (ground truth), `server` (`start_simulator`, `serve`).
"""
