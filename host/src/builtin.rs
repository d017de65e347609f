//! The plugins every host has without deploying anything: `echo` and
//! `counter`, compiled from `guests/` and embedded in the binary.

use crate::sandbox::InstanceMode;

/// A plugin shipped inside the binary.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BuiltinPlugin {
    /// The name it is served under.
    pub name: &'static str,
    /// The component's bytes.
    pub wasm: &'static [u8],
    /// How its instances are reused by default.
    pub mode: InstanceMode,
}

/// Returns its payload.
pub const ECHO: BuiltinPlugin = BuiltinPlugin {
    name: "echo",
    wasm: bulkhead_guest_artifacts::ECHO_WASM,
    mode: InstanceMode::PerRequest,
};

/// Counts its calls; kept per process, so the count shows how widely an
/// instance is shared at each isolation level.
pub const COUNTER: BuiltinPlugin = BuiltinPlugin {
    name: "counter",
    wasm: bulkhead_guest_artifacts::COUNTER_WASM,
    mode: InstanceMode::PerProcess,
};

/// Every built-in plugin: the one table of them.
pub const ALL: [BuiltinPlugin; 2] = [ECHO, COUNTER];

/// The built-in plugin of that name, if there is one.
pub fn named(name: &str) -> Option<BuiltinPlugin> {
    ALL.into_iter().find(|builtin| builtin.name == name)
}

impl std::fmt::Debug for BuiltinPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinPlugin")
            .field("name", &self.name)
            .field("size", &self.wasm.len())
            .field("mode", &self.mode)
            .finish()
    }
}
