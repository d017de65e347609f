//! The host's end of one worker's connection: the writer queue, the reader
//! task that hands each reply to whoever waits for it, and the requests that
//! wait for a reply (a call, a ping, a plugin change).
//!
//! Every request registers its waiter and enqueues its message in one step,
//! so messages reach the worker in the order the requests were made, and the
//! worker handles them in that order. When the connection ends, every waiter
//! learns at once that no reply will come.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, watch};

use super::egress::{EgressGate, EgressRules};
use crate::ipc::{self, FromWorker, Invoke, Outcome, PluginSpec, ToWorker};
use crate::names::Namespace;

/// The connection is closed: no reply can come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the connection to the worker is closed")]
pub(crate) struct Closed;

/// Replies the reader task hands back to whoever waits for them.
#[derive(Default)]
struct Pending {
    calls: HashMap<u64, oneshot::Sender<Outcome>>,
    pings: HashMap<u64, oneshot::Sender<()>>,
    plugin_acks: HashMap<String, Vec<oneshot::Sender<Option<String>>>>,
    closed: bool,
}

impl Pending {
    /// No reply will come: fail every waiter, and refuse new ones.
    fn close(&mut self) {
        self.closed = true;
        self.calls.clear();
        self.pings.clear();
        self.plugin_acks.clear();
    }

    fn take_ack(&mut self, name: &str) -> Option<oneshot::Sender<Option<String>>> {
        let waiters = self.plugin_acks.get_mut(name)?;
        let first = (!waiters.is_empty()).then(|| waiters.remove(0));
        if waiters.is_empty() {
            self.plugin_acks.remove(name);
        }
        first
    }
}

/// One worker's connection, once its handshake is done.
pub(crate) struct Connection {
    pid: u32,
    out: mpsc::UnboundedSender<ToWorker>,
    /// Where the worker's outgoing HTTP goes, and for which tenant.
    egress: Arc<EgressGate>,
    pending: Arc<Mutex<Pending>>,
    next_id: AtomicU64,
    /// Turns true when the connection ends.
    disconnected: watch::Receiver<bool>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("pid", &self.pid)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Starts the writer and reader tasks of worker `pid`'s connection.
    pub(crate) fn open(
        pid: u32,
        recv: ipc::Receiver<OwnedReadHalf, FromWorker>,
        send: ipc::Sender<OwnedWriteHalf, ToWorker>,
        egress: Arc<EgressRules>,
    ) -> Self {
        let pending = Arc::new(Mutex::new(Pending::default()));
        let (disconnected_tx, disconnected) = watch::channel(false);
        // Every message the host sends is built to fit in a frame (payloads
        // are bounded by `ipc::MAX_PAYLOAD`); one that does not is dropped.
        let (out, _writer) = send.spawn_writer(|_, _| None);
        let egress = Arc::new(EgressGate::new(egress));
        let reader = Reader {
            pid,
            pending: Arc::clone(&pending),
            egress: Arc::clone(&egress),
            out: out.clone(),
        };
        spawn_reader(reader, recv, disconnected_tx);
        Self {
            pid,
            out,
            egress,
            pending,
            next_id: AtomicU64::new(1),
            disconnected,
        }
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether replies can still come.
    pub(crate) fn is_connected(&self) -> bool {
        !*self.disconnected.borrow()
    }

    /// A receiver that turns true when the connection ends.
    pub(crate) fn disconnected(&self) -> watch::Receiver<bool> {
        self.disconnected.clone()
    }

    /// Enqueues a message that needs no reply. A failed send means the
    /// connection is gone, which the reader reports to every waiter.
    pub(crate) fn send(&self, message: ToWorker) {
        let _ = self.out.send(message);
    }

    /// Registers a waiter with `add` and enqueues `message`, in one step
    /// under the pending lock, so requests reach the worker in the order
    /// they were made.
    fn request<R>(&self, add: impl FnOnce(&mut Pending) -> R, message: ToWorker) -> Result<R, Closed> {
        let mut pending = self.pending();
        if pending.closed {
            return Err(Closed);
        }
        let registered = add(&mut pending);
        self.send(message);
        Ok(registered)
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends one call built by `invoke` (given its id); the receiver gets its
    /// outcome, or is dropped if the connection ends first.
    pub(crate) fn call(&self, invoke: impl FnOnce(u64) -> Invoke) -> Result<oneshot::Receiver<Outcome>, Closed> {
        let id = self.next_id();
        let (tx, rx) = oneshot::channel();
        self.request(|p| p.calls.insert(id, tx), ToWorker::Invoke(invoke(id)))?;
        Ok(rx)
    }

    /// Whether the worker answers a ping within `timeout`.
    pub(crate) async fn ping(&self, timeout: Duration) -> bool {
        let nonce = self.next_id();
        let (tx, rx) = oneshot::channel();
        if self
            .request(|p| p.pings.insert(nonce, tx), ToWorker::Ping { nonce })
            .is_err()
        {
            return false;
        }
        let answered = matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(())));
        if !answered {
            // Do not keep the waiter of a ping that will never be answered.
            self.pending().pings.remove(&nonce);
        }
        answered
    }

    /// Enqueues a plugin load now; the future resolves with the worker's
    /// answer (`Err` says why it refused, or that the connection ended).
    pub(crate) fn add_plugin(&self, spec: PluginSpec) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let name = spec.name.clone();
        let sent = self.request(
            |p| p.plugin_acks.entry(name).or_default().push(tx),
            ToWorker::PluginAdd(spec),
        );
        async move {
            sent.map_err(|e| e.to_string())?;
            match rx.await {
                Ok(None) => Ok(()),
                Ok(Some(error)) => Err(error),
                Err(_) => Err("the worker went away".to_owned()),
            }
        }
    }

    /// Enqueues a plugin removal now; the future resolves once the worker
    /// confirmed it (or the connection ended).
    pub(crate) fn remove_plugin(&self, name: &str) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let sent = self.request(
            |p| p.plugin_acks.entry(name.to_owned()).or_default().push(tx),
            ToWorker::PluginRemove { name: name.to_owned() },
        );
        async move {
            sent.map_err(|e| e.to_string())?;
            rx.await.map(drop).map_err(|_| "the worker went away".to_owned())
        }
    }

    /// The worker serves `namespace` only: its outgoing requests are
    /// checked against that tenant's list, whatever it claims.
    pub(crate) fn bind(&self, namespace: &Namespace) {
        self.egress.bind(namespace);
    }

    /// Fails every waiter and refuses new requests (the handle is going).
    pub(crate) fn close(&self) {
        self.pending().close();
    }
}

/// What the reader task needs.
struct Reader {
    pid: u32,
    pending: Arc<Mutex<Pending>>,
    egress: Arc<EgressGate>,
    out: mpsc::UnboundedSender<ToWorker>,
}

fn spawn_reader(reader: Reader, mut recv: ipc::Receiver<OwnedReadHalf, FromWorker>, disconnected: watch::Sender<bool>) {
    let Reader {
        pid,
        pending,
        egress,
        out,
    } = reader;
    tokio::spawn(async move {
        // Outgoing requests in flight are aborted when the connection ends
        // (the set is dropped with this task).
        let mut egress_set = tokio::task::JoinSet::new();
        loop {
            let message = match recv.recv().await {
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    tracing::error!(pid, "worker broke the protocol: {e}");
                    break;
                }
                None => break,
            };
            let mut p = pending.lock().unwrap_or_else(PoisonError::into_inner);
            match message {
                FromWorker::Result { id, outcome } => {
                    if let Some(tx) = p.calls.remove(&id) {
                        let _ = tx.send(outcome);
                    }
                }
                FromWorker::Pong { nonce } => {
                    if let Some(tx) = p.pings.remove(&nonce) {
                        let _ = tx.send(());
                    }
                }
                FromWorker::PluginAdded { name, error } => {
                    if let Some(tx) = p.take_ack(&name) {
                        let _ = tx.send(error);
                    }
                }
                FromWorker::PluginRemoved { name } => {
                    if let Some(tx) = p.take_ack(&name) {
                        let _ = tx.send(None);
                    }
                }
                FromWorker::Egress { id, namespace, request } => {
                    let (egress, out) = (Arc::clone(&egress), out.clone());
                    egress_set.spawn(async move {
                        let result = egress.forward(&namespace, request).await;
                        let _ = out.send(ToWorker::EgressResult { id, result });
                    });
                    // Reap the ones that are done.
                    while egress_set.try_join_next().is_some() {}
                }
                FromWorker::Assigned => {}
                FromWorker::AssignFailed { message } => {
                    // The worker exits after this; its exit is the crash.
                    tracing::error!(pid, "worker refused its assignment: {message}");
                }
                other => {
                    tracing::error!(pid, "unexpected message from worker: {other:?}");
                    break;
                }
            }
        }
        pending.lock().unwrap_or_else(PoisonError::into_inner).close();
        let _ = disconnected.send(true);
    });
}
