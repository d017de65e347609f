//! bulkhead runs tenants' WebAssembly plugins with the bulkhead pattern: every
//! compartment is a separately supervised worker process, and every call runs
//! under fuel, memory and wall-clock limits.
//!
//! The layers, top to bottom (see `DESIGN.md`):
//! - [`sandbox`]: one wasmtime engine that validates, precompiles and runs
//!   plugins under hard limits, turning every guest failure into an
//!   [`ErrorKind`].
//! - [`builtin`]: the plugins embedded in the binary.
//! - [`names`]: the validated tenant names every layer passes around.

pub mod api;
pub mod builtin;
pub mod cli;
pub mod compartment;
pub mod config;
pub mod error_kind;
pub mod ipc;
pub mod isolation;
pub mod local;
pub mod metrics;
pub mod names;
pub mod procmgr;
pub mod sandbox;
pub mod service;
pub mod supervisor;
pub mod worker;

pub use error_kind::ErrorKind;
