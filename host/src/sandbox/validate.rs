//! Validation and compilation of an upload, without running any of its
//! code.
//!
//! An upload is checked in the order a plugin author would want to hear about
//! problems: size, header, decoding and compilation, the handler export and
//! its types, and the imports. No instance is created: a component's start
//! code runs only inside a worker, for a call of a tenant that may call it,
//! under that call's limits. The host itself never validates or compiles:
//! it runs [`Validator::compile`] in a limited child process (see
//! `supervisor/compiler.rs`); tests and benches run it in-process.

use std::panic::AssertUnwindSafe;

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasSelf, Linker};

use super::bindings::bulkhead::plugin::types::{Error as GuestError, Request as GuestRequest};
use super::bindings::{Plugin as PluginWorld, PluginPre};
use super::error::{InvalidPlugin, SandboxError};
use super::plugin::{HANDLER_EXPORT, Pre};
use super::state::CallState;
use super::world::HTTP_HANDLER_EXPORT;
use super::{SandboxConfig, engine};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// The interface through which a component gets its directories (any
/// version).
const PREOPENS_IMPORT: &str = "wasi:filesystem/preopens@";

const WASM_MAGIC: &[u8; 4] = b"\0asm";
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
const CORE_MODULE_VERSION: [u8; 4] = [0x01, 0x00, 0x00, 0x00];

/// A valid upload, compiled.
#[derive(Debug)]
pub struct Validated {
    /// The precompiled artifact (`Component::serialize`).
    pub artifact: Vec<u8>,
    /// Whether it imports `wasi:filesystem/preopens`, and so gets a `/data`.
    pub opens_files: bool,
}

/// An engine configured as every worker's, and the linker of the
/// `bulkhead:plugin` world with WASI: what an upload must fit.
pub struct Validator {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<CallState>,
    max_plugin_size: usize,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("max_plugin_size", &self.max_plugin_size)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// The engine and linker of `config`: the workers' own (to run and
    /// compile in one process: a worker, a test), or an engine that only
    /// compiles, on one thread and without the pool (a compile child). Both
    /// make the same artifacts.
    pub fn new(config: &SandboxConfig, compile_only: bool) -> Result<Self, SandboxError> {
        let purpose = if compile_only {
            engine::Purpose::Compile
        } else {
            engine::Purpose::Run
        };
        let engine = engine::build_engine(config, purpose).map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| SandboxError::Linker(format!("{e:#}")))?;
        // wasi:http for every component: an app's types, and outgoing
        // requests, which the store's hooks relay or deny (`http.rs`).
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| SandboxError::Linker(format!("{e:#}")))?;
        PluginWorld::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| SandboxError::Linker(format!("{e:#}")))?;
        Ok(Self {
            engine,
            linker,
            max_plugin_size: config.max_plugin_size,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Validates `bytes` and compiles them; runs none of their code.
    pub fn compile(&self, bytes: &[u8]) -> Result<Validated, InvalidPlugin> {
        check_header(bytes, self.max_plugin_size)?;
        let component =
            no_panic("the compiler", || Component::new(&self.engine, bytes)).map_err(InvalidPlugin::Malformed)?;
        self.check(&component)?;
        let artifact = no_panic("serialising", || component.serialize()).map_err(InvalidPlugin::Malformed)?;
        Ok(Validated {
            artifact,
            opens_files: opens_files(&self.engine, &component),
        })
    }

    /// Links `component` (its imports must all be provided) and type-checks
    /// its export against its world (ours, or `wasi:http/proxy` when it
    /// does not export our handler), without instantiating it.
    pub(crate) fn check(&self, component: &Component) -> Result<Pre, InvalidPlugin> {
        let instance_pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| InvalidPlugin::UnsatisfiableImport(format!("{e:#}")))?;
        let engine = &self.engine;
        let ty = component.component_type();
        let handler = match ty.get_export(engine, HANDLER_EXPORT).map(|export| export.ty) {
            Some(ComponentItem::ComponentInstance(handler)) => handler,
            Some(_) => {
                return Err(InvalidPlugin::WrongSignature {
                    detail: "it is exported, but not as an instance of the handler interface".into(),
                });
            }
            None if ty
                .exports(engine)
                .any(|(name, _)| name.starts_with(HTTP_HANDLER_EXPORT)) =>
            {
                return ProxyPre::new(instance_pre)
                    .map(Pre::Http)
                    .map_err(|e| InvalidPlugin::WrongSignature {
                        detail: format!("as a wasi:http/proxy app: {e:#}"),
                    });
            }
            None => {
                let found: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
                return Err(InvalidPlugin::MissingExport {
                    found: found.join(", "),
                });
            }
        };
        let wrong = |detail: String| InvalidPlugin::WrongSignature { detail };
        let handle = match handler.get_export(engine, "handle").map(|export| export.ty) {
            Some(ComponentItem::ComponentFunc(handle)) => handle,
            Some(_) => return Err(wrong("its `handle` is not a function".into())),
            None => return Err(wrong("it has no `handle` function".into())),
        };
        // The generated bindings check the function's types only against an
        // instance; this is the same check (wasmtime's own, hidden from its
        // docs, used by those bindings), made before any instance exists.
        handle
            .typecheck::<(&GuestRequest,), (Result<Vec<u8>, GuestError>,)>(&instance_pre.instance_type())
            .map_err(|e| wrong(format!("`handle`: {e:#}")))?;
        PluginPre::new(instance_pre)
            .map(Pre::Plugin)
            .map_err(|e| wrong(format!("{e:#}")))
    }
}

/// Whether `component` imports `wasi:filesystem/preopens`, its only way to a
/// directory.
pub(crate) fn opens_files(engine: &Engine, component: &Component) -> bool {
    component
        .component_type()
        .imports(engine)
        .any(|(name, _)| name.starts_with(PREOPENS_IMPORT))
}

/// Checks the header: size, magic, and that it is a component.
pub(crate) fn check_header(bytes: &[u8], limit: usize) -> Result<(), InvalidPlugin> {
    if bytes.len() > limit {
        return Err(InvalidPlugin::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
        return Err(InvalidPlugin::NotWasm);
    }
    let version: [u8; 4] = [bytes[4], bytes[5], bytes[6], bytes[7]];
    match version {
        COMPONENT_VERSION => Ok(()),
        CORE_MODULE_VERSION => Err(InvalidPlugin::CoreModule),
        other => Err(InvalidPlugin::UnsupportedVersion(other)),
    }
}

/// Runs `f`, turning a panic inside wasmtime into an error rather than
/// letting a hostile upload take the process down.
fn no_panic<T>(what: &str, f: impl FnOnce() -> wasmtime::Result<T>) -> Result<T, String> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!("{what} panicked on this input")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_checked_before_anything_else() {
        assert_eq!(
            check_header(&[0; 10], 5),
            Err(InvalidPlugin::TooLarge { size: 10, limit: 5 })
        );
        assert_eq!(check_header(b"hello world", 100), Err(InvalidPlugin::NotWasm));
        assert_eq!(check_header(b"\0asm", 100), Err(InvalidPlugin::NotWasm));
        assert_eq!(check_header(b"\0asm\x01\0\0\0", 100), Err(InvalidPlugin::CoreModule));
        assert_eq!(
            check_header(b"\0asm\x02\0\0\0", 100),
            Err(InvalidPlugin::UnsupportedVersion([2, 0, 0, 0]))
        );
        assert_eq!(check_header(b"\0asm\x0d\0\x01\0", 100), Ok(()));
    }
}
