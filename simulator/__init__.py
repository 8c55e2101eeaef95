"""A deterministic OpenAI-compatible Assistants runs + Responses API for tests, demos and replay targets.

Modules: `config` (SimConfig), `faults` (--fault syntax), `ids`, `behaviour` (outcomes, tool
calls and usage from seed + content), `objects` (API object builders), `state` (in-memory
store, pagination), `engine` (run life cycle and events), `sse`, `middleware`, `routes`,
`truth` (ground truth), `server` (`start_simulator`, `serve`). The Responses and Conversations
APIs: `response_objects`, `response_requests` (400s), `response_state`, `response_context`
(chains, conversations, the turn after function calls), `response_engine` (life cycle and
stream events, planned by `behaviour` like runs), `response_routes`.
"""
