// kv, in JavaScript: a small JSON key-value counter kept in the instance.
//
// Requests are JSON objects:
//   {"op": "incr", "key": K}  adds one to K and answers {"key": K, "value": N}
//   {"op": "get", "key": K}   answers {"key": K, "value": N} (0 when unset)
//   {"op": "whoami"}          answers {"namespace": ..., "session": ...}
// Anything else is refused with `invalid-input` (thrown as the error variant),
// which the host reports as `guest_error`. The counts live as long as the
// instance does (per worker when deployed `per-process`) and are kept per
// namespace, so that where one worker serves several tenants (level `none`)
// each sees only its own.

const counts = new Map(); // namespace -> key -> count
const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

function refuse(message) {
  return { tag: 'invalid-input', val: message };
}

export const handler = {
  handle(req) {
    let doc;
    try {
      doc = JSON.parse(decoder.decode(req.payload));
    } catch (e) {
      throw refuse(`payload is not JSON: ${e.message}`);
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      throw refuse('payload must be a JSON object');
    }
    let answer;
    switch (doc.op) {
      case 'whoami':
        answer = { namespace: req.namespace, session: req.session };
        break;
      case 'incr':
      case 'get': {
        if (typeof doc.key !== 'string' || doc.key === '') {
          throw refuse(`${doc.op} needs a non-empty string key`);
        }
        if (!counts.has(req.namespace)) {
          counts.set(req.namespace, new Map());
        }
        const mine = counts.get(req.namespace);
        if (doc.op === 'incr') {
          mine.set(doc.key, (mine.get(doc.key) ?? 0) + 1);
        }
        answer = { key: doc.key, value: mine.get(doc.key) ?? 0 };
        break;
      }
      default:
        throw refuse(`unknown op ${JSON.stringify(doc.op)}: expected incr, get or whoami`);
    }
    return encoder.encode(JSON.stringify(answer));
  },
};
