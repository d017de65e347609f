//! The worker's side of the conversation.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use super::Jail;
use crate::ipc::{self, Assignment, FrameError, FromWorker, Init, Invoke, Outcome, PluginSpec, ToWorker};
use crate::names::Namespace;
use crate::sandbox::{
    CallFailure, Egress, EgressError, GuestFault, HostFailure, HttpRequest, HttpResponse, Plugin, Request, Sandbox,
    World,
};

/// Why a worker stopped other than by being told to.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The host sent something that is not the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A frame could not be read or written.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// `Init` failed.
    #[error("init failed: {0}")]
    Init(String),
    /// `Assign` failed.
    #[error("assign failed: {0}")]
    Assign(String),
}

/// Serves the host until it says `Shutdown`, closes the connection, or
/// breaks the protocol.
///
/// `jail` is the sandbox the worker entered at start; its assignment step
/// (Landlock for the namespace's directory) runs when the worker is bound to
/// a namespace.
pub async fn serve<R, W>(
    mut recv: ipc::Receiver<R, ToWorker>,
    send: ipc::Sender<W, FromWorker>,
    jail: Option<Arc<Jail>>,
) -> Result<(), WorkerError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out, writer) = send.spawn_writer(replace_unsendable);
    let _ = out.send(FromWorker::Hello {
        protocol: ipc::PROTOCOL_VERSION,
        pid: std::process::id(),
    });
    let mut state = WorkerState {
        egress: Arc::new(IpcEgress {
            out: out.clone(),
            waiting: Mutex::default(),
            next: AtomicU64::new(1),
        }),
        sandbox: None,
        plugins: HashMap::new(),
        unloadable: HashMap::new(),
        out,
        calls: TaskTracker::new(),
        jail,
    };
    let result = loop {
        let message = match recv.recv().await {
            None => {
                tracing::info!("the host closed the connection; exiting");
                break Ok(());
            }
            Some(Err(e)) => break Err(e.into()),
            Some(Ok(message)) => message,
        };
        match state.handle(message).await {
            Ok(Flow::Continue) => {}
            Ok(Flow::Stop) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    // Dropping the sender lets the writer flush what is queued and end.
    drop(state);
    let _ = writer.await;
    result
}

/// A call's result that does not fit in a frame becomes that call's error.
fn replace_unsendable(message: FromWorker, error: &FrameError) -> Option<FromWorker> {
    match (message, error) {
        (FromWorker::Result { id, .. }, FrameError::TooLarge { size }) => Some(FromWorker::Result {
            id,
            outcome: Outcome::Err(CallFailure::Guest(GuestFault::OutputTooLarge {
                size: *size,
                limit: ipc::MAX_FRAME,
            })),
        }),
        _ => None,
    }
}

enum Flow {
    Continue,
    Stop,
}

/// What the worker process holds: its sandbox once `Init` built it, the
/// loaded plugins, the queue to the writer task and the calls in flight.
struct WorkerState {
    sandbox: Option<Arc<Sandbox>>,
    plugins: HashMap<String, Arc<Plugin>>,
    /// Plugins of `Init` whose artifact would not load (tampered with, say),
    /// and why: their calls fail with `invalid_plugin`, the rest run.
    unloadable: HashMap<String, String>,
    out: mpsc::UnboundedSender<FromWorker>,
    calls: TaskTracker,
    jail: Option<Arc<Jail>>,
    /// Components' outgoing HTTP requests, on their way to the host.
    egress: Arc<IpcEgress>,
}

/// Sends components' outgoing HTTP requests to the host (the worker has no
/// network), which decides whether they leave.
struct IpcEgress {
    out: mpsc::UnboundedSender<FromWorker>,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Result<HttpResponse, EgressError>>>>,
    next: AtomicU64,
}

impl IpcEgress {
    /// The host's answer to request `id`.
    fn answer(&self, id: u64, result: Result<HttpResponse, EgressError>) {
        let waiter = self.waiting.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        if let Some(waiter) = waiter {
            let _ = waiter.send(result);
        }
    }
}

impl Egress for IpcEgress {
    fn send(
        &self,
        namespace: &Namespace,
        request: HttpRequest,
    ) -> Pin<Box<dyn Future<Output = Result<HttpResponse, EgressError>> + Send>> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, tx);
        let authority = request.authority.clone();
        let _ = self.out.send(FromWorker::Egress {
            id,
            namespace: namespace.clone(),
            request,
        });
        // A call that ends first drops this future; its waiter goes when
        // the host answers.
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| {
                Err(EgressError::Failed {
                    authority,
                    message: "the host went away".into(),
                })
            })
        })
    }
}

impl WorkerState {
    fn reply(&self, message: FromWorker) {
        // The writer only stops when the host is gone; then nobody listens.
        let _ = self.out.send(message);
    }

    fn sandbox(&self, what: &str) -> Result<&Arc<Sandbox>, WorkerError> {
        self.sandbox
            .as_ref()
            .ok_or_else(|| WorkerError::Protocol(format!("{what} before Init")))
    }

    async fn handle(&mut self, message: ToWorker) -> Result<Flow, WorkerError> {
        match message {
            ToWorker::Init(init) => self.init(init).await?,
            ToWorker::Assign(assign) => self.assign(assign)?,
            ToWorker::Invoke(invoke) => self.invoke(invoke)?,
            ToWorker::Ping { nonce } => self.reply(FromWorker::Pong { nonce }),
            ToWorker::EgressResult { id, result } => self.egress.answer(id, result),
            ToWorker::PluginAdd(spec) => {
                let sandbox = Arc::clone(self.sandbox("PluginAdd")?);
                let name = spec.name.clone();
                let error = match load(&sandbox, spec) {
                    Ok(plugin) => {
                        self.unloadable.remove(&name);
                        self.plugins.insert(name.clone(), plugin);
                        None
                    }
                    Err(e) => Some(e),
                };
                self.reply(FromWorker::PluginAdded { name, error });
            }
            ToWorker::PluginRemove { name } => {
                self.plugins.remove(&name);
                self.unloadable.remove(&name);
                self.reply(FromWorker::PluginRemoved { name });
            }
            ToWorker::Shutdown { grace } => {
                self.calls.close();
                if tokio::time::timeout(grace, self.calls.wait()).await.is_err() {
                    tracing::warn!(in_flight = self.calls.len(), "grace period of {grace:?} over; exiting");
                }
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    async fn init(&mut self, init: Init) -> Result<(), WorkerError> {
        if self.sandbox.is_some() {
            return Err(WorkerError::Protocol("second Init".into()));
        }
        let started = std::time::Instant::now();
        let sandbox = match Sandbox::new(init.sandbox) {
            Ok(mut sandbox) => {
                sandbox.set_egress(Arc::clone(&self.egress) as Arc<dyn Egress>);
                Arc::new(sandbox)
            }
            Err(e) => return Err(self.init_failed(e.to_string())),
        };
        for spec in init.plugins {
            let name = spec.name.clone();
            match sandbox.load(&spec.name, spec.artifact, spec.mode) {
                Ok(plugin) => {
                    self.plugins.insert(name, plugin);
                }
                // One plugin that cannot load must not keep every tenant's
                // new workers from starting.
                Err(e) => {
                    tracing::error!("plugin {name}: {e}; its calls fail with invalid_plugin");
                    self.unloadable.insert(name, e.to_string());
                }
            }
        }
        // Warm the instantiation path with the host's own plugin, never a
        // tenant's: no tenant code runs before a call of a tenant that may
        // make it.
        if let Some(spec) = init.warmup {
            match load(&sandbox, spec) {
                Ok(warmup) => {
                    if let Err(e) = sandbox.warm_up(&warmup).await {
                        tracing::warn!("warm-up instantiation failed: {e}");
                    }
                }
                Err(e) => tracing::warn!("warm-up plugin: {e}"),
            }
        }
        self.sandbox = Some(sandbox);
        tracing::debug!(plugins = self.plugins.len(), "ready in {:?}", started.elapsed());
        self.reply(FromWorker::Ready);
        Ok(())
    }

    fn init_failed(&self, message: String) -> WorkerError {
        self.reply(FromWorker::InitFailed {
            message: message.clone(),
        });
        WorkerError::Init(message)
    }

    fn assign(&mut self, assign: Assignment) -> Result<(), WorkerError> {
        let sandbox = self.sandbox("Assign")?;
        if let Some(namespace) = &assign.namespace
            && let Err(bound) = sandbox.bind_namespace(namespace.clone())
        {
            return Err(self.assign_failed(format!("already bound to namespace {bound}, cannot serve {namespace}")));
        }
        if let (Some(namespace), Some(jail)) = (&assign.namespace, &self.jail) {
            let confined = sandbox
                .namespace_dir(namespace)
                .map_err(|e| e.to_string())
                .and_then(|dir| {
                    let ticker = |job| sandbox.run_on_ticker_thread(job);
                    jail.confine_to(&dir, &[&ticker]).map_err(|e| e.to_string())
                });
            if let Err(e) = confined {
                return Err(self.assign_failed(e));
            }
        }
        tracing::debug!(process_id = %assign.process_id, level = %assign.level, "assigned");
        self.reply(FromWorker::Assigned);
        Ok(())
    }

    fn assign_failed(&self, message: String) -> WorkerError {
        self.reply(FromWorker::AssignFailed {
            message: message.clone(),
        });
        WorkerError::Assign(message)
    }

    fn invoke(&mut self, invoke: Invoke) -> Result<(), WorkerError> {
        let sandbox = Arc::clone(self.sandbox("Invoke")?);
        let id = invoke.id;
        let refuse = |failure: HostFailure| FromWorker::Result {
            id,
            outcome: Outcome::Err(failure.into()),
        };
        if self.calls.is_closed() {
            self.reply(refuse(HostFailure::ShuttingDown));
            return Ok(());
        }
        let Some(plugin) = self.plugins.get(&invoke.plugin).cloned() else {
            let failure = match self.unloadable.get(&invoke.plugin) {
                Some(message) => HostFailure::PluginUnloadable {
                    name: invoke.plugin,
                    message: message.clone(),
                },
                None => HostFailure::PluginNotFound { name: invoke.plugin },
            };
            self.reply(refuse(failure));
            return Ok(());
        };
        let out = self.out.clone();
        self.calls.spawn(async move {
            let request = Request {
                namespace: invoke.namespace,
                session: invoke.session,
                payload: invoke.payload,
            };
            let called = match invoke.world {
                World::Plugin => sandbox.call(&plugin, request, &invoke.limits).await,
                World::HttpProxy => {
                    sandbox
                        .call_http_app(&plugin, request, &invoke.limits, ipc::MAX_HTTP_BODY)
                        .await
                }
            };
            let outcome = match called {
                Ok(done) if done.output.len() > ipc::MAX_OUTPUT => {
                    Outcome::Err(CallFailure::Guest(GuestFault::OutputTooLarge {
                        size: done.output.len(),
                        limit: ipc::MAX_OUTPUT,
                    }))
                }
                Ok(done) => Outcome::Ok {
                    output: done.output,
                    fuel_consumed: done.fuel_consumed,
                    duration: done.duration,
                },
                Err(failure) => Outcome::Err(failure),
            };
            let _ = out.send(FromWorker::Result { id, outcome });
        });
        Ok(())
    }
}

fn load(sandbox: &Sandbox, spec: PluginSpec) -> Result<Arc<Plugin>, String> {
    sandbox
        .load(&spec.name, spec.artifact, spec.mode)
        .map_err(|e| format!("plugin {}: {e}", spec.name))
}
