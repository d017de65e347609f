//! The config's enums are the isolation and sandbox layers' own types. The
//! isolation level gets its TOML deserialisation here, with an error that
//! lists the choices.

pub use crate::isolation::IsolationLevel;
pub use crate::sandbox::InstanceMode;

impl<'de> serde::Deserialize<'de> for IsolationLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::raw::from_str_value(d, "isolation level")
    }
}
