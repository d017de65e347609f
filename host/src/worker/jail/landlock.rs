//! Landlock: the worker's file access, TCP and signals, confined by the
//! kernel whatever its uid may do.
//!
//! At start (every worker, pool or not): files are read only in the
//! compile cache (the artifacts it maps) and written only in the data root;
//! nothing else of the file system can be opened, executed or created. No
//! TCP bind or connect. No signal to, and no abstract UNIX socket of, any
//! process outside the worker's own domain (the host, sibling workers).
//! At assignment to a namespace a second layer narrows writes (and reads)
//! to that namespace's directory for the rest of the process's life: a pool
//! worker is tenant-agnostic until then, a compartment's worker never again.
//!
//! When the cache lies inside the data root (its default place), this
//! layer alone would let a pool worker write it; the read-only mount and
//! the uid keep it out, and from assignment on this layer does too.
//!
//! The rules ask for ABI 6 (Linux 6.12: scopes); on an older kernel the
//! layer is only partly enforced and reported unavailable.

use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetStatus, Scope,
};

use super::Outcome;

/// The ABI the rules are written for.
const TARGET: ABI = ABI::V6;

/// The Landlock ABI of the running kernel: 0 when Landlock is not enabled.
pub fn landlock_abi() -> u32 {
    const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
    // SAFETY: with this flag the call takes no pointer (NULL, size 0) and
    // only returns the ABI version or an error.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(abi).unwrap_or(0)
}

/// Reading files and listing directories.
fn read() -> BitFlags<AccessFs> {
    AccessFs::ReadFile | AccessFs::ReadDir
}

/// What a guest's WASI filesystem needs of `/data`: read, write, create
/// files, directories and symlinks, remove and rename. No exec, no
/// devices, sockets or pipes, no device ioctls.
fn read_write() -> BitFlags<AccessFs> {
    read()
        | AccessFs::WriteFile
        | AccessFs::Truncate
        | AccessFs::RemoveDir
        | AccessFs::RemoveFile
        | AccessFs::MakeDir
        | AccessFs::MakeReg
        | AccessFs::MakeSym
        | AccessFs::Refer
}

pub(super) fn restrict_pool(cache: &Path, data: &Path) -> Outcome {
    let abi = landlock_abi();
    if abi == 0 {
        return Outcome::Unavailable("Landlock is not enabled in this kernel".into());
    }
    let built = (|| -> Result<_, Box<dyn std::error::Error>> {
        Ok(Ruleset::default()
            .handle_access(AccessFs::from_all(TARGET))?
            .handle_access(AccessNet::from_all(TARGET))?
            .scope(Scope::from_all(TARGET))?
            .create()?
            .add_rule(PathBeneath::new(PathFd::new(cache)?, read()))?
            .add_rule(PathBeneath::new(PathFd::new(data)?, read_write()))?
            .no_new_privs(false)
            .restrict_self()?)
    })();
    match built {
        Ok(status) if status.ruleset == RulesetStatus::FullyEnforced => Outcome::On(format!(
            "ABI {abi}: read {}, write {}, no TCP, signals and abstract sockets scoped",
            cache.display(),
            data.display()
        )),
        Ok(status) if status.ruleset == RulesetStatus::PartiallyEnforced => Outcome::Partial(format!(
            "only partly enforced: the kernel has Landlock ABI {abi}, the rules need {}",
            TARGET as u32
        )),
        Ok(_) => Outcome::Unavailable(format!("not enforced (kernel Landlock ABI {abi})")),
        Err(e) => Outcome::Broken(format!("{e}")),
    }
}

/// The assignment layer's ruleset: reads in the cache, reads and writes in
/// `dir`; [`restrict`] puts a thread under it.
pub(super) fn namespace_ruleset(cache: &Path, dir: &Path) -> Result<RulesetCreated, String> {
    (|| -> Result<_, Box<dyn std::error::Error>> {
        Ok(Ruleset::default()
            .handle_access(AccessFs::from_all(TARGET))?
            .create()?
            .add_rule(PathBeneath::new(PathFd::new(cache)?, read()))?
            .add_rule(PathBeneath::new(PathFd::new(dir)?, read_write()))?
            // Already set at start; seccomp allows no other `prctl` now.
            .no_new_privs(false))
    })()
    .map_err(|e| e.to_string())
}

/// Puts the calling thread under `ruleset`. Partly enforced is enough here:
/// on a kernel older than the rules' ABI, the file rules it has still hold.
pub(super) fn restrict(ruleset: RulesetCreated) -> Result<(), String> {
    match ruleset.restrict_self().map_err(|e| e.to_string())?.ruleset {
        RulesetStatus::FullyEnforced | RulesetStatus::PartiallyEnforced => Ok(()),
        RulesetStatus::NotEnforced => Err("the namespace layer was not enforced".into()),
    }
}
