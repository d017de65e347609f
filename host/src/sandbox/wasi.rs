//! The WASI context of an instance: nothing ambient.
//!
//! No host environment, arguments or stdin; no network (every socket use and
//! name lookup is denied); real clocks and random; stdout and stderr go to the
//! log; and the only filesystem is the namespace's own directory under
//! `data.dir`, preopened as `/data` and created on first use. A plugin that
//! does not import `wasi:filesystem/preopens` cannot open a directory, so
//! its calls get none and leave the disk alone.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::state::{LogStream, SharedTags};
use crate::names::Namespace;

/// Where guests see their namespace's directory.
pub const GUEST_DATA_DIR: &str = "/data";

/// The most random bytes one `get-random-bytes` call may ask for (wasmtime's
/// default is 64 MiB: host memory outside `limits.memory`, and a stall of
/// the worker's thread that neither fuel nor the deadline can cut). A guest
/// that asks for more traps.
pub const MAX_RANDOM_BYTES: u64 = 1 << 20;

/// The root of every namespace's data directory.
#[derive(Debug)]
pub(crate) struct DataRoot {
    path: PathBuf,
    dir: Dir,
    /// Namespaces whose directory is known to exist.
    ready: Mutex<HashSet<Namespace>>,
}

impl DataRoot {
    /// Opens `path`, creating it when missing.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(path)?;
        let dir = Dir::open_ambient_dir(path, ambient_authority())?;
        Ok(Self {
            path: path.to_owned(),
            dir,
            ready: Mutex::default(),
        })
    }

    /// The host path of `namespace`'s directory, created on first use.
    ///
    /// A [`Namespace`] is always a single normal path component, and the
    /// directory is created through a capability on the root, so the result
    /// is always directly inside the root. An entry that exists but is not a
    /// directory (a symlink planted by someone with access to the host) is
    /// refused rather than followed.
    pub(crate) fn namespace_dir(&self, namespace: &Namespace) -> io::Result<PathBuf> {
        let path = self.path.join(namespace.as_str());
        let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        if ready.contains(namespace) {
            return Ok(path);
        }
        match self.dir.create_dir(namespace.as_str()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let meta = self.dir.symlink_metadata(namespace.as_str())?;
                if !meta.is_dir() {
                    return Err(io::Error::other(format!(
                        "{} exists and is not a directory",
                        path.display()
                    )));
                }
            }
            Err(e) => return Err(e),
        }
        ready.insert(namespace.clone());
        Ok(path)
    }
}

/// Builds a WASI context whose only directory is `data_dir` (if any).
pub(crate) fn wasi_ctx(data_dir: Option<&Path>, tags: &SharedTags) -> io::Result<WasiCtx> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(LogStream::new("stdout", tags.clone()))
        .stderr(LogStream::new("stderr", tags.clone()))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .max_random_size(MAX_RANDOM_BYTES)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    if let Some(dir) = data_dir {
        builder
            .preopened_dir(dir, GUEST_DATA_DIR, FsPerms::ReadWrite)
            .map_err(|e| io::Error::other(format!("preopening {}: {e}", dir.display())))?;
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_directories_are_created_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = DataRoot::open(&tmp.path().join("data")).unwrap();
        let ns = Namespace::new("tenant-a").unwrap();
        let dir = root.namespace_dir(&ns).unwrap();
        assert_eq!(dir, tmp.path().join("data/tenant-a"));
        assert!(dir.is_dir());
        assert_eq!(root.namespace_dir(&ns).unwrap(), dir);
    }

    #[test]
    fn a_symlink_in_place_of_a_namespace_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root_path = tmp.path().join("data");
        let root = DataRoot::open(&root_path).unwrap();
        std::os::unix::fs::symlink(tmp.path(), root_path.join("evil")).unwrap();
        let err = root.namespace_dir(&Namespace::new("evil").unwrap()).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
