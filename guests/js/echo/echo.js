// echo, in JavaScript: answers the payload unchanged and logs its size.
//
// Built with jco (componentize-js) against the repository's `wit/` (world
// `plugin`); see guests/README.md. WIT interfaces are imported by their
// names; the exported `handler` interface is this module's `handler` export.

import { log } from 'bulkhead:plugin/log@0.1.0';

export const handler = {
  handle(req) {
    log('debug', `js echo: ${req.payload.length} bytes for ${req.namespace}`);
    return req.payload;
  },
};
