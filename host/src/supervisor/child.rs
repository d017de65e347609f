//! One worker OS process: noticing its exit the moment it happens (a pidfd in
//! the event loop, not a poll), reaping it, and killing it.
//!
//! Caveats, as with any child process: dropping a [`ChildProcess`] kills the
//! worker (SIGKILL through the pidfd, so a recycled pid can never be hit) and
//! reaps it; a worker is never left running or as a zombie by the host, and
//! the worker's parent-death signal covers a host that is killed outright.

use std::io;
use std::os::fd::OwnedFd;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

/// A spawned worker process.
#[derive(Debug)]
pub(crate) struct ChildProcess {
    pid: u32,
    pidfd: Arc<OwnedFd>,
    child: Arc<Mutex<Option<Child>>>,
    exit: watch::Receiver<Option<ExitStatus>>,
    killed: AtomicBool,
}

impl ChildProcess {
    /// Starts watching `child`; its exit status is published as soon as the
    /// kernel reports it.
    pub(crate) fn watch(child: Child) -> io::Result<Self> {
        let pid = child.id();
        let raw = Pid::from_child(&child);
        let pidfd = Arc::new(pidfd_open(raw, PidfdFlags::empty())?);
        // SAFETY: the AsyncFd owns its own duplicate of the pidfd (an
        // OwnedFd), which stays open and unchanged until the AsyncFd drops.
        let readable = unsafe { AsyncFd::register(pidfd.try_clone()?) }?;
        let child = Arc::new(Mutex::new(Some(child)));
        let (tx, exit) = watch::channel(None);
        let reaper = Arc::clone(&child);
        tokio::spawn(async move {
            loop {
                let Ok(mut ready) = readable.readable().await else {
                    return;
                };
                let mut slot = reaper.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(child) = slot.as_mut() else { return };
                match child.try_wait() {
                    Ok(Some(status)) => {
                        slot.take();
                        let _ = tx.send(Some(status));
                        return;
                    }
                    Ok(None) => ready.clear_ready(),
                    Err(e) => {
                        tracing::error!(pid, "waiting for worker: {e}");
                        return;
                    }
                }
            }
        });
        Ok(Self {
            pid,
            pidfd,
            child,
            exit,
            killed: AtomicBool::new(false),
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status, once the process is gone.
    pub(crate) fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// Waits until the process has exited and been reaped.
    pub(crate) async fn exited(&self) -> ExitStatus {
        let mut exit = self.exit.clone();
        match exit.wait_for(Option::is_some).await {
            Ok(status) => status.unwrap_or_else(unreachable_status),
            // The reaper stopped without a status: the runtime is shutting
            // down and nobody will manage this worker any more. Kill it
            // first, or the blocking wait would wait for a live process.
            Err(_) => {
                self.kill();
                self.reap_blocking()
            }
        }
    }

    /// Sends SIGKILL (once) unless the process is already gone.
    pub(crate) fn kill(&self) {
        if self.exit_status().is_some() {
            return;
        }
        self.killed.store(true, Ordering::Relaxed);
        if let Err(e) = pidfd_send_signal(&*self.pidfd, Signal::KILL)
            && e != rustix::io::Errno::SRCH
        {
            tracing::warn!(pid = self.pid, "SIGKILL: {e}");
        }
    }

    /// Whether the host killed it.
    pub(crate) fn was_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    fn reap_blocking(&self) -> ExitStatus {
        let mut slot = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.take() {
            Some(mut child) => child.wait().unwrap_or_else(|_| unreachable_status()),
            None => self.exit_status().unwrap_or_else(unreachable_status),
        }
    }
}

/// An exit status for a process whose real status was lost: "killed".
fn unreachable_status() -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus::from_raw(Signal::KILL.as_raw())
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.exit_status().is_none() {
            self.kill();
            // SIGKILL cannot be ignored: the wait is short.
            self.reap_blocking();
        }
    }
}

/// Describes an exit status the way a shell would (`128 + signal`).
pub(crate) fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal} (status {})", 128 + signal),
        (None, None) => "unknown status".into(),
    }
}
