//! The plugin set: the one owner of which plugins every worker has.
//!
//! It holds the specs and a registry of every started worker, idle or
//! assigned. A change updates the specs and enqueues the change to every
//! live worker in one step under its lock, so every worker sees the changes
//! in the order they were made. A worker is started with a snapshot of the
//! specs and registered once it is ready; if the set changed in between, the
//! difference is sent to it then, so no worker can miss a change made while
//! it was starting.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use super::handle::WorkerHandle;
use crate::ipc::PluginSpec;

/// The specs at one moment, by name.
pub(crate) type Specs = Arc<BTreeMap<String, PluginSpec>>;

/// How long a worker may take to answer a plugin change before it is
/// killed (and, if assigned, restarted by procmgr with the new set): one
/// unresponsive worker holds up a deploy this long at most, and no other
/// worker's start waits for it at all.
pub(crate) const PLUGIN_CHANGE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct State {
    specs: Specs,
    workers: Vec<Weak<WorkerHandle>>,
}

impl State {
    /// The registered workers that can still take messages; forgets the rest.
    /// Every worker still referenced elsewhere, dead or alive. The caller
    /// drops them after releasing the lock: the last reference to a dead
    /// worker reaps it, which must not happen under the lock.
    fn workers(&mut self) -> Vec<Arc<WorkerHandle>> {
        self.workers.retain(|w| w.strong_count() > 0);
        self.workers.iter().filter_map(Weak::upgrade).collect()
    }
}

/// What a change asks of one worker, and the worker's answer.
type Ack = std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// The plugin specs and every worker that must follow them.
#[derive(Debug)]
pub(crate) struct PluginSet {
    state: Mutex<State>,
}

impl PluginSet {
    pub(crate) fn new(specs: Vec<PluginSpec>) -> Self {
        let specs = specs.into_iter().map(|spec| (spec.name.clone(), spec)).collect();
        Self {
            state: Mutex::new(State {
                specs: Arc::new(specs),
                workers: Vec::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves `specs` instead of the current set, before any worker started
    /// (nothing is sent to workers).
    pub(crate) fn replace(&self, specs: Vec<PluginSpec>) {
        let specs = specs.into_iter().map(|spec| (spec.name.clone(), spec)).collect();
        self.state().specs = Arc::new(specs);
    }

    /// The specs now: what a worker being started loads.
    pub(crate) fn snapshot(&self) -> Specs {
        Arc::clone(&self.state().specs)
    }

    /// Whether a plugin of that name exists.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.state().specs.contains_key(name)
    }

    /// The world of the plugin of that name, if there is one.
    pub(crate) fn world(&self, name: &str) -> Option<crate::sandbox::World> {
        self.state().specs.get(name).map(|spec| spec.artifact.world)
    }

    /// Every spec, by name.
    pub(crate) fn list(&self) -> Vec<PluginSpec> {
        self.state().specs.values().cloned().collect()
    }

    /// Makes `worker`, started with `loaded`, follow the set: every later
    /// change reaches it, and what changed since `loaded` is sent now. A
    /// worker that cannot load a plugin it was sent is killed.
    pub(crate) fn register(&self, worker: &Arc<WorkerHandle>, loaded: &Specs) {
        let acks = {
            let mut state = self.state();
            state.workers.retain(|w| w.strong_count() > 0);
            state.workers.push(Arc::downgrade(worker));
            if Arc::ptr_eq(loaded, &state.specs) {
                return;
            }
            let mut acks: Vec<Ack> = Vec::new();
            for (name, spec) in state.specs.iter() {
                if loaded.get(name) != Some(spec) {
                    acks.push(Box::pin(worker.add_plugin(spec.clone())));
                }
            }
            for name in loaded.keys().filter(|name| !state.specs.contains_key(*name)) {
                acks.push(Box::pin(worker.remove_plugin(name)));
            }
            acks
        };
        let worker = Arc::clone(worker);
        tokio::spawn(async move {
            await_acks(vec![(worker, acks)]).await;
        });
    }

    /// Adds or replaces `spec` in every live worker (and in every worker
    /// started from now on); returns once each has loaded it or was killed.
    pub(crate) async fn set(&self, spec: PluginSpec) {
        let (acks, held) = {
            let mut state = self.state();
            let mut specs = (*state.specs).clone();
            specs.insert(spec.name.clone(), spec.clone());
            state.specs = Arc::new(specs);
            let workers = state.workers();
            let acks = workers
                .iter()
                .filter(|worker| worker.is_alive())
                .map(|worker| {
                    let ack: Ack = Box::pin(worker.add_plugin(spec.clone()));
                    (Arc::clone(worker), vec![ack])
                })
                .collect();
            (acks, workers)
        };
        await_acks(acks).await;
        drop(held);
    }

    /// Removes `name` from every live worker (and from the set that later
    /// workers start with); `false` if there was no plugin of that name.
    pub(crate) async fn remove(&self, name: &str) -> bool {
        let (acks, held) = {
            let mut state = self.state();
            if !state.specs.contains_key(name) {
                return false;
            }
            let mut specs = (*state.specs).clone();
            specs.remove(name);
            state.specs = Arc::new(specs);
            let workers = state.workers();
            let acks = workers
                .iter()
                .filter(|worker| worker.is_alive())
                .map(|worker| {
                    let ack: Ack = Box::pin(worker.remove_plugin(name));
                    (Arc::clone(worker), vec![ack])
                })
                .collect();
            (acks, workers)
        };
        await_acks(acks).await;
        drop(held);
        true
    }
}

/// Waits (at most [`PLUGIN_CHANGE_TIMEOUT`]) for each worker's answers;
/// kills a worker that refused a change or did not answer in time.
async fn await_acks(acks: Vec<(Arc<WorkerHandle>, Vec<Ack>)>) {
    let waits = acks.into_iter().map(|(worker, acks)| async move {
        let answers = tokio::time::timeout(PLUGIN_CHANGE_TIMEOUT, futures_util::future::join_all(acks)).await;
        let failure = match answers {
            Ok(answers) => answers.into_iter().find_map(Result::err),
            Err(_) => Some(format!("no answer within {PLUGIN_CHANGE_TIMEOUT:?}")),
        };
        if let Some(error) = failure
            && worker.is_alive()
        {
            tracing::error!(
                pid = worker.pid(),
                "worker cannot apply a plugin change ({error}); killing it"
            );
            worker.kill();
        }
    });
    futures_util::future::join_all(waits).await;
}
