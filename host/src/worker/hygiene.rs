//! What a worker does to itself before anything else: die with its parent,
//! no core dumps and not dumpable (no `ptrace` attach by its own uid, no
//! `/proc/PID/mem` of it), `no_new_privs` (no exec gains privileges, and
//! seccomp can later be installed without privilege), no descriptor it did
//! not ask for (everything inherited but standard input, output and error
//! is closed), a bounded number of open files.
//!
//! These are set by the worker rather than in a `pre_exec` hook so the host
//! can spawn with `posix_spawn` (vfork) instead of `fork`, which costs
//! milliseconds in a large host. The parent-death signal refers to the host
//! thread that spawned the worker, which is why the host spawns from a
//! dedicated thread that lives as long as the host.

use rustix::process::{Resource, Rlimit, Signal, getppid, set_parent_process_death_signal, setrlimit};

/// A protection could not be put in place.
#[derive(Debug, thiserror::Error)]
pub enum HygieneError {
    /// `prctl(PR_SET_PDEATHSIG)` failed.
    #[error("cannot set the parent-death signal: {0}")]
    DeathSignal(#[source] rustix::io::Errno),
    /// The parent is not the host that spawned us: it already died.
    #[error("parent is {actual:?}, not the host {expected}: the host is gone")]
    Orphaned { expected: u32, actual: Option<i32> },
    /// A `prctl` failed.
    #[error("cannot set {what}: {source}")]
    Prctl {
        what: &'static str,
        #[source]
        source: rustix::io::Errno,
    },
    /// `setrlimit` failed.
    #[error("cannot set {what}: {source}")]
    Rlimit {
        what: &'static str,
        #[source]
        source: rustix::io::Errno,
    },
}

/// Dies with `parent` (refusing to run if it is gone already), no core
/// dumps, at most `open_files` descriptors.
pub(super) fn apply(parent: u32, open_files: u64) -> Result<(), HygieneError> {
    set_parent_process_death_signal(Some(Signal::KILL)).map_err(HygieneError::DeathSignal)?;
    // The host may have died before the line above ran; then no signal
    // will ever come, and we were re-parented.
    let parent_now = getppid().map(|pid| pid.as_raw_nonzero().get());
    if parent_now != i32::try_from(parent).ok() {
        return Err(HygieneError::Orphaned {
            expected: parent,
            actual: parent_now,
        });
    }
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    setrlimit(Resource::Core, none).map_err(|source| HygieneError::Rlimit {
        what: "RLIMIT_CORE",
        source,
    })?;
    let files = Rlimit {
        current: Some(open_files),
        maximum: Some(open_files),
    };
    setrlimit(Resource::Nofile, files).map_err(|source| HygieneError::Rlimit {
        what: "RLIMIT_NOFILE",
        source,
    })?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable).map_err(|source| {
        HygieneError::Prctl {
            what: "PR_SET_DUMPABLE 0",
            source,
        }
    })?;
    rustix::thread::set_no_new_privs(true).map_err(|source| HygieneError::Prctl {
        what: "PR_SET_NO_NEW_PRIVS",
        source,
    })?;
    close_inherited();
    Ok(())
}

/// Closes every descriptor above standard error: the worker opens none of
/// its own before this, so each is one inherited by mistake (a library's
/// descriptor without close-on-exec in the host).
fn close_inherited() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let inherited: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in inherited {
        // SAFETY: only borrowed for the check below, while nothing else in
        // this process opens or closes descriptors (hygiene runs before
        // anything that does).
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        // The directory's own descriptor was among them and is closed now.
        if rustix::io::fcntl_getfd(borrowed).is_err() {
            continue;
        }
        // SAFETY: nothing in this process owns these descriptors: the
        // worker has opened none yet (hygiene runs first), so no Rust
        // object refers to them.
        unsafe { rustix::io::close(fd) };
    }
}
