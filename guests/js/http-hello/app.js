// http-hello, in JavaScript: a `wasi:http/proxy` app that implements
// `wasi:http/incoming-handler` itself, with the WASI bindings jco generates
// (as the Rust twin, `guests/http-hello`, does with `wasip2`). It answers as
// its twin does, with `x-app: javascript` (but for `/status/`, which takes
// 200 to 599 only):
// - every response has `x-app`, `x-method`, `x-path` (path and query), and
//   `x-echo` copied from the request when present;
// - `POST` (any path): status 201, the request's body back, with
//   `x-body-length` and the request's `content-type`;
// - `GET /status/NNN`: status NNN, or 400 when NNN is not a number from 200
//   to 599;
// - any other `GET`: 200 `hello from javascript`.
//
// (StarlingMonkey's `fetch` event would be shorter, but it is tied to
// wasi:http 0.2.10, whose WIT jco does not ship.)

import { Fields, OutgoingBody, OutgoingResponse, ResponseOutparam } from 'wasi:http/types@0.2.12';

const encoder = new TextEncoder();

export const incomingHandler = {
  handle(request, responseOut) {
    const method = methodName(request.method());
    const path = request.pathWithQuery() ?? '/';
    const received = request.headers().entries();
    const header = (name) => received.find(([key]) => key === name)?.[1];
    const headers = [
      ['x-app', encoder.encode('javascript')],
      ['x-method', encoder.encode(method)],
      ['x-path', encoder.encode(path)],
    ];
    const echo = header('x-echo');
    if (echo !== undefined) {
      headers.push(['x-echo', echo]);
    }
    let status;
    let body;
    if (method === 'POST') {
      body = readBody(request);
      headers.push(['x-body-length', encoder.encode(String(body.length))]);
      const type = header('content-type');
      if (type !== undefined) {
        headers.push(['content-type', type]);
      }
      status = 201;
    } else if (path.startsWith('/status/')) {
      const digits = path.slice('/status/'.length);
      const code = /^[0-9]{3}$/.test(digits) ? Number(digits) : 0;
      status = code >= 200 && code <= 599 ? code : 400;
      body = encoder.encode(`status ${status}\n`);
    } else {
      headers.push(['content-type', encoder.encode('text/plain')]);
      status = 200;
      body = encoder.encode('hello from javascript\n');
    }
    respond(responseOut, status, headers, body);
  },
};

function methodName(method) {
  return method.tag === 'other' ? method.val : method.tag.toUpperCase();
}

// The whole request body, read until its stream is closed.
function readBody(request) {
  const incoming = request.consume();
  const stream = incoming.stream();
  const chunks = [];
  let length = 0;
  for (;;) {
    let chunk;
    try {
      chunk = stream.blockingRead(65536n);
    } catch (e) {
      if (streamClosed(e)) {
        break;
      }
      throw e;
    }
    chunks.push(chunk);
    length += chunk.length;
  }
  const body = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.length;
  }
  return body;
}

// A stream error is thrown as its variant, possibly wrapped in an Error.
function streamClosed(e) {
  return (e?.payload ?? e)?.tag === 'closed';
}

function respond(responseOut, status, headers, body) {
  const response = new OutgoingResponse(Fields.fromList(headers));
  response.setStatusCode(status);
  const outgoing = response.body();
  ResponseOutparam.set(responseOut, { tag: 'ok', val: response });
  const stream = outgoing.write();
  // blocking-write-and-flush takes at most 4096 bytes at a time.
  for (let at = 0; at < body.length; at += 4096) {
    stream.blockingWriteAndFlush(body.subarray(at, at + 4096));
  }
  stream[Symbol.dispose]();
  OutgoingBody.finish(outgoing, undefined);
}
