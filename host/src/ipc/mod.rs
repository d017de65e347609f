//! The host <-> worker protocol: postcard-encoded messages in length-prefixed
//! frames over the socketpair a worker inherits as its only descriptor.
//!
//! The conversation is:
//! 1. worker -> `Hello { protocol, pid }`; the host refuses another version;
//! 2. host -> `Init` (sandbox settings and plugin set); worker -> `Ready` once
//!    its engine is up and every plugin is loaded (a warm pool worker waits here);
//! 3. host -> `Assign` (process id, level, bound namespace/session); worker -> `Assigned`;
//! 4. any number of `Invoke`s in flight at once, each answered by a `Result`
//!    with the same id; `Ping`/`Pong`; `PluginAdd`/`PluginRemove` with their acks;
//!    A call's outgoing HTTP request is the worker's `Egress`, answered by
//!    the host's `EgressResult` with the same id;
//! 5. host -> `Shutdown { grace }`: the worker finishes its calls for at most
//!    the grace period and exits.
//!
//! Frames are bounded by [`MAX_FRAME`], and every message is built to fit:
//! payloads by [`MAX_PAYLOAD`], outputs by [`MAX_OUTPUT`], guest error
//! messages by `sandbox::MAX_ERROR_MESSAGE`. A message that still does not
//! fit is not sent: the writer replaces it (a call's result becomes that
//! call's error) and the connection goes on. Anything that does not decode
//! ends the connection: the worker exits, and the host treats that as a
//! crash.

mod framing;
mod messages;

pub(crate) use self::framing::{FrameError, Receiver, Sender, channel};
pub use self::messages::{Assignment, CpuLimits, PluginSpec};
pub(crate) use self::messages::{FromWorker, Init, Invoke, Outcome, ToWorker};

/// Bumped on every incompatible change of [`ToWorker`] or [`FromWorker`].
pub(crate) const PROTOCOL_VERSION: u32 = 4;

/// Largest frame either side accepts: room for the largest payload or output
/// plus the message around it (names, limits, an error message).
pub(crate) const MAX_FRAME: usize = MAX_OUTPUT + (256 << 10);

/// Largest guest output a worker sends back; a larger one fails its call
/// with `guest_error` (the frame limit is never reached).
pub(crate) const MAX_OUTPUT: usize = 16 << 20;

/// Largest body of an app's HTTP response: an output less room for its
/// status and headers (which a store bounds to 64 KiB in memory).
pub(crate) const MAX_HTTP_BODY: usize = MAX_OUTPUT - (128 << 10);

/// Largest call payload: `server.max_payload` may not be set higher, so an
/// `Invoke` always fits in a frame.
pub(crate) const MAX_PAYLOAD: usize = MAX_OUTPUT;
