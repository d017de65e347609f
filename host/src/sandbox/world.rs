//! Which world a component targets: ours (`bulkhead:plugin`, called at
//! `/v1/invoke/{plugin}`) or `wasi:http/proxy` (an HTTP app, served at
//! `/v1/http/{plugin}/...`).
//!
//! The host reads it off the component's top-level export names, without
//! compiling anything, so that it knows the world of every plugin it stores
//! (also of one whose artifact it finds in the cache). The worker's linker
//! then checks the export's types before anything is instantiated (see
//! `validate.rs`): a name that lies about its types is refused there.

use serde::{Deserialize, Serialize};
use wasmparser::{Parser, Payload};

use super::error::InvalidPlugin;
use super::plugin::HANDLER_EXPORT;

/// The export that makes a component a `wasi:http/proxy` app (any 0.2
/// version: the linker matches them by semver).
pub const HTTP_HANDLER_EXPORT: &str = "wasi:http/incoming-handler@0.2";

/// The world of a component.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum World {
    /// `bulkhead:plugin`: exports `bulkhead:plugin/handler`.
    #[default]
    Plugin,
    /// `wasi:http/proxy`: exports `wasi:http/incoming-handler`.
    HttpProxy,
}

impl World {
    /// The world's name, as the API shows it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Plugin => "bulkhead:plugin",
            Self::HttpProxy => "wasi:http/proxy",
        }
    }

    /// The HTTP route its calls take, for error messages.
    pub const fn route(self) -> &'static str {
        match self {
            Self::Plugin => "POST /v1/invoke/{plugin}",
            Self::HttpProxy => "/v1/http/{plugin}/{path}",
        }
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The world of the component in `bytes` (whose header was checked), from
/// its top-level exports: ours if it exports the handler, else
/// `wasi:http/proxy` if it exports the incoming handler.
pub fn world_of(bytes: &[u8]) -> Result<World, InvalidPlugin> {
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| InvalidPlugin::Malformed(e.to_string()))? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    let export = export.map_err(|e| InvalidPlugin::Malformed(e.to_string()))?;
                    exports.push(export.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    if exports.iter().any(|name| name == HANDLER_EXPORT) {
        Ok(World::Plugin)
    } else if exports.iter().any(|name| name.starts_with(HTTP_HANDLER_EXPORT)) {
        Ok(World::HttpProxy)
    } else {
        Err(InvalidPlugin::MissingExport {
            found: exports.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_echo_is_of_our_world() {
        assert_eq!(world_of(crate::builtin::ECHO.wasm).unwrap(), World::Plugin);
    }

    #[test]
    fn a_component_without_either_export_is_refused_with_what_it_exports() {
        let bytes = wat::parse_str("(component)").unwrap();
        assert_eq!(
            world_of(&bytes),
            Err(InvalidPlugin::MissingExport { found: String::new() })
        );
    }
}
