"""kv, in Python: a small JSON key-value counter kept in the instance.

Requests are JSON objects:
  {"op": "incr", "key": K}  adds one to K and answers {"key": K, "value": N}
  {"op": "get", "key": K}   answers {"key": K, "value": N} (0 when unset)
  {"op": "whoami"}          answers {"namespace": ..., "session": ...}
Anything else is refused with `invalid-input`, which the host reports as
`plugin_error`. The counts live as long as the instance does: per worker
when the plugin is resident, per call when it is instantiated per request.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

COUNTS: dict[str, int] = {}


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
            if op == "incr":
                COUNTS[key] = COUNTS.get(key, 0) + 1
            answer = {"key": key, "value": COUNTS.get(key, 0)}
        else:
            raise refuse(f"unknown op {op!r}: expected incr, get or whoami")
        return json.dumps(answer).encode()
