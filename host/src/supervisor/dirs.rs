//! The two directories workers use, made ready for sandboxed workers before
//! the first one starts.
//!
//! Both become absolute, canonical paths (a worker's mount namespace
//! rebuilds them at the same paths, and its working directory is not the
//! host's). When workers drop to an unprivileged uid:
//! - the compile cache stays root's, readable (and its directories
//!   traversable) by the workers' group only, writable by nobody but the
//!   host: an escaped guest cannot plant an artifact;
//! - the data root and everything in it belong to the workers' uid and gid,
//!   so a guest can write its namespace's directory (the host, as root,
//!   still reads and writes all of it). Entries owned by anyone else (data
//!   written by workers that ran as root before) are handed over once here.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::sandbox::{PluginError, SandboxConfig};

/// Readable and traversable by the owner and the group.
const CACHE_DIR_MODE: u32 = 0o750;

fn failure(path: &Path) -> impl FnOnce(io::Error) -> PluginError {
    let path = path.to_owned();
    move |source| PluginError::Cache { path, source }
}

/// Creates and canonicalises `sandbox`'s directories.
pub(crate) fn absolutize(sandbox: &mut SandboxConfig) -> Result<(), PluginError> {
    sandbox.cache_dir = absolute(&sandbox.cache_dir).map_err(failure(&sandbox.cache_dir))?;
    sandbox.data_dir = absolute(&sandbox.data_dir).map_err(failure(&sandbox.data_dir))?;
    Ok(())
}

/// Hands the directories to `identity` (uid, gid), the workers' (see the
/// module doc); after the compile cache created its engine directory.
pub(crate) fn share(sandbox: &SandboxConfig, identity: Option<(u32, u32)>) -> Result<(), PluginError> {
    if let Some((uid, gid)) = identity {
        share_cache(&sandbox.cache_dir, gid).map_err(failure(&sandbox.cache_dir))?;
        hand_over(&sandbox.data_dir, uid, gid).map_err(failure(&sandbox.data_dir))?;
    }
    Ok(())
}

fn absolute(path: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(path)?;
    std::fs::canonicalize(path)
}

/// The cache root and its engine directories: owner root, group `gid`,
/// mode 0750. Artifact files are written 0644 (`CompileCache`).
fn share_cache(root: &Path, gid: u32) -> io::Result<()> {
    let mut dirs = vec![root.to_owned()];
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            dirs.push(entry.path());
        }
    }
    for dir in dirs {
        std::os::unix::fs::chown(&dir, None, Some(gid))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(CACHE_DIR_MODE))?;
    }
    Ok(())
}

/// Everything under `root` (itself included) owned by `uid`:`gid`, without
/// following symbolic links.
fn hand_over(root: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let mut pending = vec![root.to_owned()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.uid() != uid || meta.gid() != gid {
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    Ok(())
}
