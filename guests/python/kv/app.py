"""kv, in Python: a small JSON key-value counter kept in the instance.

Requests are JSON objects:
  {"op": "incr", "key": K}  adds one to K and answers {"key": K, "value": N}
  {"op": "get", "key": K}   answers {"key": K, "value": N} (0 when unset)
  {"op": "whoami"}          answers {"namespace": ..., "session": ...}
Anything else is refused with `invalid-input`, which the host reports as
`guest_error`. The counts live as long as the instance does: per worker when
the plugin is deployed `per-process`, one call when `per-request`. They are
kept per namespace, so that where one worker serves several tenants (level
`none`) each sees only its own.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

COUNTS: dict[tuple[str, str], int] = {}


def refuse(message: str) -> Err:
    return Err(types.Error_InvalidInput(message))


class Handler(exports.Handler):
    def handle(self, req: types.Request) -> bytes:
        try:
            doc = json.loads(req.payload)
        except (UnicodeDecodeError, ValueError) as e:
            raise refuse(f"payload is not JSON: {e}")
        if not isinstance(doc, dict):
            raise refuse("payload must be a JSON object")
        op = doc.get("op")
        if op == "whoami":
            answer = {"namespace": req.namespace, "session": req.session}
        elif op in ("incr", "get"):
            key = doc.get("key")
            if not isinstance(key, str) or not key:
                raise refuse(f"{op} needs a non-empty string key")
            slot = (req.namespace, key)
            if op == "incr":
                COUNTS[slot] = COUNTS.get(slot, 0) + 1
            answer = {"key": key, "value": COUNTS.get(slot, 0)}
        else:
            raise refuse(f"unknown op {op!r}: expected incr, get or whoami")
        return json.dumps(answer).encode()
