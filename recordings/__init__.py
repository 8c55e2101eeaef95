"""Recordings: what replay and serve both read, in one place.

- `exchanges`: `RecordedExchange` and `load_exchanges` from one or several stores (`--db` forms),
  and `path_and_query`;
- `retries`: the one rule for failed attempts a client retried (left out);
- `sessions`: sessions by thread (`RecordedThread`, `group_threads`, `load_threads`);
- `toolcalls`: the tool calls of runs and steps, and how two lists of them pair up;
- `ids`: the one id mapper (`IdMap`), learned from responses (replay) or handed out (serve);
- `jsondiff`: the one JSON diff;
- `pacing`: recorded time at a chosen `--speed`.

It reads the store (`store.multi`) and the capture layer's extractors; replay and serve build on it.
"""
