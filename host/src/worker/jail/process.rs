//! The process's own protections: die with the host, then (after the
//! identity change, which resets it) not dumpable and `no_new_privs`.

use rustix::process::{DumpableBehavior, Signal, getppid, set_dumpable_behavior, set_parent_process_death_signal};

use super::JailError;

/// SIGKILL when the host dies; refuses to run if it already has.
pub(super) fn die_with_parent(parent: u32) -> Result<(), JailError> {
    set_parent_process_death_signal(Some(Signal::KILL)).map_err(|e| JailError::Hygiene {
        what: "cannot set the parent-death signal",
        source: e.into(),
    })?;
    // The host may have died before the line above ran; then no signal
    // will ever come, and we were re-parented.
    let parent_now = getppid().map(|pid| pid.as_raw_nonzero().get());
    if parent_now != i32::try_from(parent).ok() {
        return Err(JailError::Orphaned {
            expected: parent,
            actual: parent_now,
        });
    }
    Ok(())
}

/// Not dumpable (no `ptrace` attach by its own uid, no `/proc/PID/mem`, no
/// core) and `no_new_privs` (no exec gains privileges; Landlock and seccomp
/// can be installed without privilege).
pub(super) fn lock_down() -> Result<(), JailError> {
    set_dumpable_behavior(DumpableBehavior::NotDumpable).map_err(|e| JailError::Hygiene {
        what: "cannot set PR_SET_DUMPABLE 0",
        source: e.into(),
    })?;
    rustix::thread::set_no_new_privs(true).map_err(|e| JailError::Hygiene {
        what: "cannot set PR_SET_NO_NEW_PRIVS",
        source: e.into(),
    })
}
