//! The guest plugins of `guests/`, compiled to `wasm32-wasip2` components by
//! this crate's build script.
//!
//! Tests and benches load them by path ([`ECHO`], [`GUESTS`], ...); the host
//! embeds the two built-in plugins, `echo` and `counter`, as bytes.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The `echo` component, embedded as a built-in plugin.
pub static ECHO_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/echo.wasm"));

/// The `counter` component, embedded as a built-in plugin.
pub static COUNTER_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/counter.wasm"));
