//! Running one call: a store with the call's limits, a fresh or kept
//! instance, the handler, and the mapping of every way it can fail onto one
//! error kind.
//!
//! The wall-clock deadline is enforced twice: the epoch callback traps a guest
//! that is running wasm code (checked every tick of the engine's ticker), and
//! an async timeout cancels a call that is blocked in a host call (a WASI
//! sleep or poll), which epochs cannot reach. A store that trapped or was
//! cancelled is never used again.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::Plugin as PluginWorld;
use super::bindings::bulkhead::plugin::types::{Error as GuestError, Request as GuestRequest};
use super::error::{CallFailure, GuestFault, HostFailure};
use super::http::Hooks;
use super::plugin::{InstanceMode, Plugin, Pre};
use super::state::{CallState, LogBucket, LogTags, SharedTags};
use super::world::World;
use super::{CallLimits, Sandbox, wasi};
use crate::names::{Namespace, SessionId};

/// The longest error message a call returns, in bytes: a guest's own error
/// (or a trap's description) is cut there, so a reply always fits its frame
/// and a guest cannot make the host hold more than this per failed call.
pub const MAX_ERROR_MESSAGE: usize = 64 << 10;

/// One call's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The tenant.
    pub namespace: Namespace,
    /// The session within the tenant.
    pub session: SessionId,
    /// The payload handed to the guest.
    pub payload: Vec<u8>,
}

/// A successful call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutput {
    /// What the guest returned.
    pub output: Vec<u8>,
    /// Fuel the call consumed (instantiation included for a fresh instance).
    pub fuel_consumed: u64,
    /// Wall-clock time of the call, waiting for a kept instance included.
    pub duration: Duration,
}

/// The kept instance of a `per-process` plugin.
pub(crate) struct Resident {
    store: Store<CallState>,
    world: PluginWorld,
}

/// Tags for stores that serve no tenant (trial instantiation at load).
pub(crate) fn anonymous_tags(bucket: &Arc<LogBucket>) -> SharedTags {
    Arc::new(Mutex::new(LogTags::new(
        "(loading)".into(),
        "-".into(),
        "-".into(),
        Arc::clone(bucket),
    )))
}

pub(super) fn tags_for(plugin: &Plugin, request: &Request, bucket: &Arc<LogBucket>) -> LogTags {
    LogTags::new(
        plugin.name.clone(),
        request.namespace.as_str().into(),
        request.session.as_str().into(),
        Arc::clone(bucket),
    )
}

/// Summarises a wasmtime error for the caller: the trap or root message,
/// without the backtrace noise.
pub(crate) fn describe(err: &wasmtime::Error) -> String {
    let text = match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => err.root_cause().to_string(),
    };
    bounded(text)
}

/// `text` cut to [`MAX_ERROR_MESSAGE`] bytes (on a character boundary), with
/// a note of how long it was.
fn bounded(mut text: String) -> String {
    if text.len() <= MAX_ERROR_MESSAGE {
        return text;
    }
    let len = text.len();
    let mut end = MAX_ERROR_MESSAGE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!(" [cut: {len} bytes in all]"));
    text
}

/// Maps a failed instantiation or call onto the guest's fault.
pub(super) fn classify(err: &wasmtime::Error, memory_refused: bool, limits: &CallLimits) -> GuestFault {
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => GuestFault::Fuel {
            limit: limits.fuel.unwrap_or(u64::MAX),
        },
        Some(Trap::Interrupt) => timed_out(limits),
        _ if memory_refused => GuestFault::Memory {
            limit: limits.memory,
            detail: describe(err),
        },
        _ => GuestFault::Trap(describe(err)),
    }
}

fn timed_out(limits: &CallLimits) -> GuestFault {
    GuestFault::Timeout { limit: limits.timeout }
}

/// The host could not set up the call (its data directory is unusable).
fn data_dir_failure(err: std::io::Error) -> HostFailure {
    tracing::error!("cannot prepare a call's {}: {err}", wasi::GUEST_DATA_DIR);
    HostFailure::DataDir {
        message: err.to_string(),
    }
}

fn guest_error(err: GuestError) -> GuestFault {
    GuestFault::Error(bounded(match err {
        GuestError::InvalidInput(msg) => format!("invalid input: {msg}"),
        GuestError::Failed(msg) => msg,
    }))
}

impl Sandbox {
    /// Runs `request` through `plugin` (of our world) under `limits`.
    pub async fn call(
        &self,
        plugin: &Plugin,
        request: Request,
        limits: &CallLimits,
    ) -> Result<CallOutput, CallFailure> {
        self.call_world(plugin, World::Plugin, request, limits, usize::MAX)
            .await
    }

    /// Serves one HTTP request with `plugin`, a `wasi:http/proxy` app,
    /// under `limits`: `request.payload` is an encoded
    /// [`HttpRequest`](super::HttpRequest), and the output an encoded
    /// [`HttpResponse`](super::HttpResponse) whose body is at most
    /// `body_limit` bytes.
    pub async fn call_http_app(
        &self,
        plugin: &Plugin,
        request: Request,
        limits: &CallLimits,
        body_limit: usize,
    ) -> Result<CallOutput, CallFailure> {
        self.call_world(plugin, World::HttpProxy, request, limits, body_limit)
            .await
    }

    /// A call made as one of `world`'s.
    async fn call_world(
        &self,
        plugin: &Plugin,
        world: World,
        request: Request,
        limits: &CallLimits,
        output_limit: usize,
    ) -> Result<CallOutput, CallFailure> {
        if let Some(bound) = self.bound_namespace()
            && *bound != request.namespace
        {
            return Err(HostFailure::WrongNamespace {
                bound: bound.clone(),
                requested: request.namespace,
            }
            .into());
        }
        let started = Instant::now();
        let deadline = started + limits.timeout;
        if plugin.world() != world {
            return Err(wrong_world(plugin, world));
        }
        let run = async {
            match (&plugin.pre, plugin.mode) {
                // An app gets a fresh instance for every request, whatever
                // its mode (as `wasmtime serve` gives a p2 app).
                (Pre::Http(pre), _) => {
                    self.call_http(plugin, pre, request, limits, deadline, output_limit)
                        .await
                }
                (Pre::Plugin(_), InstanceMode::PerRequest) => self.call_fresh(plugin, request, limits, deadline).await,
                (Pre::Plugin(_), InstanceMode::PerProcess) => {
                    self.call_resident(plugin, request, limits, deadline).await
                }
            }
        };
        let (output, fuel_consumed) = tokio::time::timeout_at(deadline.into(), run)
            .await
            .map_err(|_| CallFailure::from(timed_out(limits)))??;
        Ok(CallOutput {
            output,
            fuel_consumed,
            duration: started.elapsed(),
        })
    }

    /// A store with the call's fuel, memory limit and `deadline`, whose
    /// only directory is `data_dir`.
    pub(crate) fn new_store(
        &self,
        data_dir: Option<PathBuf>,
        limits: &CallLimits,
        deadline: Instant,
        tags: SharedTags,
    ) -> Result<Store<CallState>, HostFailure> {
        let wasi = wasi::wasi_ctx(data_dir.as_deref(), &tags).map_err(data_dir_failure)?;
        let hooks = Hooks {
            namespace: None,
            egress: self.egress.clone(),
        };
        let mut store = Store::new(
            self.validator.engine(),
            CallState::new(wasi, hooks, limits.memory, deadline, tags),
        );
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        prepare(&mut store, limits, deadline);
        Ok(store)
    }

    /// The `/data` an instance of `plugin` serving `namespace` gets: that
    /// namespace's directory, or none when there is no one namespace or the
    /// plugin cannot open files.
    pub(super) fn data_dir(
        &self,
        plugin: &Plugin,
        namespace: Option<&Namespace>,
    ) -> Result<Option<PathBuf>, HostFailure> {
        match namespace {
            Some(namespace) if plugin.opens_files => {
                self.data.namespace_dir(namespace).map(Some).map_err(data_dir_failure)
            }
            _ => Ok(None),
        }
    }

    async fn call_fresh(
        &self,
        plugin: &Plugin,
        request: Request,
        limits: &CallLimits,
        deadline: Instant,
    ) -> Result<(Vec<u8>, u64), CallFailure> {
        let data_dir = self.data_dir(plugin, Some(&request.namespace))?;
        let mut fresh = self.instantiate(plugin, &request, data_dir, limits, deadline).await?;
        Ok(invoke(&mut fresh.store, &fresh.world, request, limits).await?)
    }

    /// A new instance of `plugin` for `request`'s caller, whose only
    /// directory is `data_dir`, under the call's limits and deadline.
    async fn instantiate(
        &self,
        plugin: &Plugin,
        request: &Request,
        data_dir: Option<PathBuf>,
        limits: &CallLimits,
        deadline: Instant,
    ) -> Result<Resident, CallFailure> {
        let tags = Arc::new(Mutex::new(tags_for(plugin, request, &self.log_bucket)));
        let mut store = self.new_store(data_dir, limits, deadline, tags)?;
        store.data_mut().hooks.namespace = Some(request.namespace.clone());
        let pre = match &plugin.pre {
            Pre::Plugin(pre) => pre,
            Pre::Http(_) => return Err(wrong_world(plugin, World::Plugin)),
        };
        match pre.instantiate_async(&mut store).await {
            Ok(world) => Ok(Resident { store, world }),
            Err(e) => Err(fresh_store_failure(self, &e, &store, limits)),
        }
    }

    async fn call_resident(
        &self,
        plugin: &Plugin,
        request: Request,
        limits: &CallLimits,
        deadline: Instant,
    ) -> Result<(Vec<u8>, u64), CallFailure> {
        let mut slot = plugin.resident.lock().await;
        // Taken out while the call runs: if the call traps or is cancelled,
        // the instance is dropped with it and never put back.
        let mut resident = match slot.take() {
            Some(mut resident) => {
                *resident
                    .store
                    .data()
                    .tags
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = tags_for(plugin, &request, &self.log_bucket);
                // A kept instance's outgoing requests are its current caller's.
                resident.store.data_mut().hooks.namespace = Some(request.namespace.clone());
                prepare(&mut resident.store, limits, deadline);
                resident
            }
            None => {
                // A kept instance outlives its first caller: it only gets a
                // /data when the whole sandbox serves one namespace.
                let data_dir = self.data_dir(plugin, self.bound_namespace())?;
                self.instantiate(plugin, &request, data_dir, limits, deadline).await?
            }
        };
        let result = invoke(&mut resident.store, &resident.world, request, limits).await;
        // The guest's own error leaves the instance between calls; a trap or
        // a limit leaves it mid-call, so it is dropped.
        if matches!(result, Ok(_) | Err(GuestFault::Error(_))) {
            *slot = Some(resident);
        }
        Ok(result?)
    }
}

/// Why instantiating in a fresh store failed: no pool slot left (the
/// host's), or the guest's fault.
pub(super) fn fresh_store_failure(
    sandbox: &Sandbox,
    err: &wasmtime::Error,
    store: &Store<CallState>,
    limits: &CallLimits,
) -> CallFailure {
    if err.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
        HostFailure::NoInstanceSlot {
            slots: sandbox.config.instance_slots,
        }
        .into()
    } else {
        classify(err, store.data().limiter.refused(), limits).into()
    }
}

/// A call made to `plugin` as if it were of `called`, which it is not.
fn wrong_world(plugin: &Plugin, called: World) -> CallFailure {
    let world = plugin.world();
    HostFailure::BadRequest(format!(
        "plugin {} is a {world} component, not a {called} one: call it at {}",
        plugin.name,
        world.route()
    ))
    .into()
}

/// Sets a store's fuel, memory limit and deadline for the next call.
fn prepare(store: &mut Store<CallState>, limits: &CallLimits, deadline: Instant) {
    let fuel = limits.fuel.unwrap_or(u64::MAX);
    store.set_fuel(fuel).expect("the engine meters fuel");
    store.set_epoch_deadline(1);
    let state = store.data_mut();
    state.deadline = deadline;
    state.limiter.reset_for_call(limits.memory);
}

/// Calls the handler and maps the outcome.
async fn invoke(
    store: &mut Store<CallState>,
    world: &PluginWorld,
    request: Request,
    limits: &CallLimits,
) -> Result<(Vec<u8>, u64), GuestFault> {
    // `prepare` filled the tank just before instantiation or this call.
    let fuel_before = limits.fuel.unwrap_or(u64::MAX);
    let request = GuestRequest {
        namespace: request.namespace.as_str().to_owned(),
        session: request.session.as_str().to_owned(),
        payload: request.payload,
    };
    let result = world.bulkhead_plugin_handler().call_handle(&mut *store, &request).await;
    let fuel_consumed = fuel_before.saturating_sub(store.get_fuel().unwrap_or(0));
    match result {
        Ok(Ok(output)) => Ok((output, fuel_consumed)),
        Ok(Err(err)) => Err(guest_error(err)),
        Err(e) => Err(classify(&e, store.data().limiter.refused(), limits)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_error_messages_are_cut_on_a_char_boundary_and_say_so() {
        assert_eq!(bounded("short".into()), "short");
        let long = bounded("é".repeat(MAX_ERROR_MESSAGE));
        assert!(long.len() < MAX_ERROR_MESSAGE + 40, "{}", long.len());
        assert!(long.ends_with(&format!("[cut: {} bytes in all]", 2 * MAX_ERROR_MESSAGE)));
        assert!(long.starts_with('é'));
    }
}
