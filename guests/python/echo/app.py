"""echo, in Python: answers the payload unchanged and logs its size.

Built with componentize-py against the repository's `wit/` (world
`bulkhead:plugin/plugin`); see guests/README.md.
"""

from wit_world import exports
from wit_world.imports import log, types


class Handler(exports.Handler):
    def handle(self, req: types.Request) -> bytes:
        log.log(log.Level.DEBUG, f"python echo: {len(req.payload)} bytes for {req.namespace}")
        return req.payload
