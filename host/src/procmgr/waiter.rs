//! Waiting for a process state without polling: a handle on the process's
//! watch channel, woken by the change itself.
//!
//! The handle never lends out a borrow of the channel's value: a borrow held
//! while the manager publishes a change would block the publishing thread
//! (the manager publishes while it holds its own lock), so every method
//! returns an owned snapshot instead.

use std::time::Duration;

use tokio::sync::watch;

use super::error::ProcmgrError;
use super::types::{ProcessId, ProcessState, ProcessStatus};

/// Watches the status of one generation of a process.
///
/// It starts with the current status, so a waiter that subscribes after a
/// change still sees it. When the process is purged (or replaced by a new
/// generation) the last status published stays visible.
#[derive(Debug, Clone)]
pub struct StatusWatch<H = ()> {
    id: ProcessId,
    rx: watch::Receiver<ProcessStatus<H>>,
}

impl<H: Clone> StatusWatch<H> {
    pub(crate) fn new(id: ProcessId, rx: watch::Receiver<ProcessStatus<H>>) -> Self {
        Self { id, rx }
    }

    /// The process watched.
    pub fn id(&self) -> &ProcessId {
        &self.id
    }

    /// The latest status.
    pub fn current(&self) -> ProcessStatus<H> {
        self.rx.borrow().clone()
    }

    /// The latest state.
    pub fn state(&self) -> ProcessState {
        self.rx.borrow().state
    }

    /// Wait until the status satisfies `predicate` (the current status is
    /// checked first). [`ProcmgrError::ProcessGone`] if the process is
    /// purged before that.
    pub async fn wait_for(
        &mut self,
        predicate: impl FnMut(&ProcessStatus<H>) -> bool,
    ) -> Result<ProcessStatus<H>, ProcmgrError> {
        match self.rx.wait_for(predicate).await {
            Ok(status) => Ok(status.clone()),
            Err(_closed) => Err(ProcmgrError::ProcessGone { id: self.id.clone() }),
        }
    }

    /// [`wait_for`](Self::wait_for), giving up with
    /// [`ProcmgrError::WaitTimeout`] after `timeout`.
    pub async fn wait_for_timeout(
        &mut self,
        predicate: impl FnMut(&ProcessStatus<H>) -> bool,
        timeout: Duration,
    ) -> Result<ProcessStatus<H>, ProcmgrError> {
        match tokio::time::timeout(timeout, self.wait_for(predicate)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(ProcmgrError::WaitTimeout {
                id: self.id.clone(),
                timeout,
            }),
        }
    }

    /// Wait for the next published change and return it.
    pub async fn changed(&mut self) -> Result<ProcessStatus<H>, ProcmgrError> {
        match self.rx.changed().await {
            Ok(()) => Ok(self.rx.borrow_and_update().clone()),
            Err(_closed) => Err(ProcmgrError::ProcessGone { id: self.id.clone() }),
        }
    }
}
