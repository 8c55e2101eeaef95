"""`runtap replay --api responses`: recorded Assistants sessions, replayed against a Responses API server.

A migration test. Each recorded thread is translated the way OpenAI's migration guide maps the
objects (`translate`: threads -> conversations, runs -> responses, tool outputs ->
`function_call_output` items), sent with httpx (`send`), observed (`observe`) and compared with the
recording through the runs replay's matchers and this package's mapping tables (`mapping`,
`compare`). What has no counterpart is listed as not comparable; traffic already on the
Responses API is skipped (`native`). `costs` prices both sides per model; `runner` ties it together.
"""
