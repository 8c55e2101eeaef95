"""`runtap serve`: an Assistants-compatible mock that answers from a recording.

Built on `runtap.recordings` (loading, retried attempts, sessions by thread, the id mapper, the
JSON diff). Requests are matched by operation and normalized body (ids mapped to the recorded
ones), poll loops play their recorded statuses and then repeat the last one, streams are
replayed with their recorded timing, and anything unrecorded gets OpenAI's 404 error naming the
closest recorded request. Start one with `serve.server.start_serve(db)` or `runtap serve --db FILE`.
"""
