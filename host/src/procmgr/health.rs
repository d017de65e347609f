//! The health report: counts over every process not yet purged, and each
//! process's state, health, uptime, last sync, errors and restarts.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use super::state::{Entry, UNHEALTHY_ERRORS};
use super::types::{ProcessId, ProcessState};

/// Health of the whole manager.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// Every process not yet purged (Finished ones included).
    pub total_processes: usize,
    /// Processes in Syncing.
    pub running_processes: usize,
    /// Processes in Terminating.
    pub terminating_processes: usize,
    /// Processes with more than 5 consecutive errors.
    pub failed_processes: usize,
    /// Ids waiting in the work queue.
    pub work_queue_depth: usize,
    /// Per-process health, by id.
    pub processes: BTreeMap<ProcessId, ProcessHealth>,
}

/// Health of one process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessHealth {
    /// Current state.
    pub state: ProcessState,
    /// Syncing with fewer than 5 consecutive errors.
    pub healthy: bool,
    /// Since the first successful sync; frozen at Finished; zero if never synced.
    pub uptime: Duration,
    /// Wall-clock time of the last successful sync.
    pub last_sync: Option<SystemTime>,
    /// Consecutive errors.
    pub error_count: u32,
    /// Restarts reported by the syncer.
    pub restart_count: u32,
}

impl Health {
    pub(crate) fn from_entries<C, H: Clone>(
        entries: &HashMap<ProcessId, Entry<C, H>>,
        work_queue_depth: usize,
    ) -> Self {
        let mut health = Health {
            total_processes: entries.len(),
            running_processes: 0,
            terminating_processes: 0,
            failed_processes: 0,
            work_queue_depth,
            processes: BTreeMap::new(),
        };
        for (id, e) in entries {
            match e.state {
                ProcessState::Syncing => health.running_processes += 1,
                ProcessState::Terminating => health.terminating_processes += 1,
                _ => {}
            }
            if e.error_count > UNHEALTHY_ERRORS {
                health.failed_processes += 1;
            }
            let status = e.snapshot();
            health.processes.insert(
                id.clone(),
                ProcessHealth {
                    state: status.state,
                    healthy: status.healthy,
                    uptime: status.uptime(),
                    last_sync: status.last_sync,
                    error_count: status.error_count,
                    restart_count: status.restart_count,
                },
            );
        }
        health
    }
}
