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
//! 5. host -> `Shutdown { grace }`: the worker finishes its calls for at most
//!    the grace period and exits.
//!
//! Frames are bounded by [`MAX_FRAME`]. Anything that does not decode ends the
//! connection: the worker exits, and the host treats that as a crash.

mod framing;
mod messages;

pub(crate) use self::framing::{FrameError, Receiver, Sender, channel};
pub(crate) use self::messages::{Assignment, FromWorker, Init, Invoke, Outcome, PluginSpec, ToWorker};

/// Bumped on every incompatible change of [`ToWorker`] or [`FromWorker`].
pub(crate) const PROTOCOL_VERSION: u32 = 2;

/// Largest frame either side accepts: room for the largest payload or output
/// (16 MiB) plus the message around it.
pub(crate) const MAX_FRAME: usize = 16 << 20 | 64 << 10;

/// Largest guest output a worker sends back; a larger one fails the call.
pub(crate) const MAX_OUTPUT: usize = 16 << 20;
