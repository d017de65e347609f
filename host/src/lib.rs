//! bulkhead runs tenants' WebAssembly plugins with the bulkhead pattern: every
//! compartment is a separately supervised worker process, and every call runs
//! under fuel, memory and wall-clock limits.
//!
//! The layers, top to bottom (see `DESIGN.md`). A call goes down the data
//! plane: HTTP -> service -> isolation (which process; its bulkhead) ->
//! supervisor (the worker's handle) -> IPC -> the worker process -> sandbox.
//! procmgr drives the control plane: it starts, watches, restarts and stops
//! the processes the isolation layer asks for.
//!
//! - [`cli`]: the command line (`main.rs` only dispatches); [`cli::serve`]
//!   runs the host.
//! - `api`: the HTTP API on axum; every failure rendered in one place.
//! - [`service`]: the entry point of the host: invoke, deploy, remove, the
//!   processes; builds itself from a [`config::Config`].
//! - [`isolation`]: isolation keys to live workers through procmgr, the
//!   per-process bulkhead, eviction and the idle reaper.
//! - [`procmgr`]: the reconciliation engine (the memo's RFC-034), the one
//!   owner of whether a process is live.
//! - [`supervisor`]: worker processes: spawn, pidfd, cgroups, the warm pool,
//!   the plugin set every worker follows, and procmgr's syncer.
//! - `ipc`: the host <-> worker protocol.
//! - [`worker`]: the worker process itself (`bulkhead worker`).
//! - [`sandbox`]: one wasmtime engine that validates, precompiles and runs
//!   plugins under hard limits; every failed call is a typed
//!   [`sandbox::CallFailure`].
//! - [`config`]: TOML + environment + flags, validated, every knob documented.
//! - Vocabulary every layer shares: [`compartment`] (levels, keys, process
//!   ids), [`names`] (validated names), [`error_kind`] (the contract's error
//!   kinds and their HTTP rules), [`builtin`] (the plugins in the binary).
//! - `metrics`: the host's Prometheus metrics; [`local`]: a whole host in
//!   this process, for the benches and `bench cold-start`.

pub(crate) mod api;
pub mod builtin;
pub mod cli;
pub mod compartment;
pub mod config;
pub mod error_kind;
#[cfg(test)]
mod fuzz;
pub(crate) mod ipc;
pub mod isolation;
pub mod local;
pub(crate) mod metrics;
pub mod names;
pub mod procmgr;
pub mod reporter;
pub mod sandbox;
pub mod service;
pub mod supervisor;
pub mod worker;

pub use error_kind::ErrorKind;
