//! A disk quota per namespace: each namespace's data directory is its own
//! ext4 filesystem, in a sparse image file of `limits.disk` bytes with
//! `limits.disk_files` inodes, loop-mounted by the host over
//! `<data.dir>/<namespace>`.
//!
//! Why this mechanism: it is a real filesystem limit the kernel enforces on
//! every write, whatever the writer (a guest through WASI, or an escaped
//! guest natively), in bytes and in files at once; a full tenant gets
//! `ENOSPC` inside its own calls while the host's disk, its logs, the other
//! tenants and deploys are untouched. Project quotas would need the data
//! root's filesystem formatted for them (the host cannot assume so), and
//! accounting in the WASI layer would miss native writes. The cost is one
//! loop device and one mount per namespace that has data, created on the
//! namespace's first call (measured in `BENCHMARKS.md`), and an image file
//! whose blocks are only allocated as the tenant writes.
//!
//! The data root is made a shared mount, so a namespace mounted after a
//! worker started (a pool worker, or the shared worker of level `none`)
//! appears in the worker's mount namespace too (its copy is a slave of the
//! host's). Data written before quotas were on is copied into the new image
//! (and the old directory kept beside the images, never deleted).
//! Images live in `<data.dir>/.images/`, which no namespace can name.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};

use crate::names::Namespace;

/// A namespace's quota: bytes and files (inodes) of its filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLimits {
    pub bytes: u64,
    pub files: u64,
}

/// What a namespace's filesystem holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DiskUsage {
    pub used_bytes: u64,
    pub limit_bytes: u64,
    pub used_files: u64,
    pub limit_files: u64,
}

/// The per-namespace filesystems of one data root.
#[derive(Debug)]
pub(crate) struct DiskQuotas {
    data_root: PathBuf,
    owner: Option<(u32, u32)>,
    /// Whether the data root's bind mount on itself is ours (to undo).
    bound_self: bool,
    /// Namespaces whose filesystem is mounted.
    mounted: Mutex<HashSet<Namespace>>,
}

fn io_other(what: impl Into<String>) -> io::Error {
    io::Error::other(what.into())
}

/// Whether `path` is a mount point (its device differs from its parent's,
/// or it is a bind mount of itself, which `mountinfo` would show; the
/// device test is enough for the loop mounts made here).
fn is_mount_point(path: &Path) -> bool {
    let (Ok(own), Some(Ok(parent))) = (std::fs::metadata(path), path.parent().map(std::fs::metadata)) else {
        return false;
    };
    own.dev() != parent.dev()
}

/// Whether `path` appears as a mount point in `/proc/self/mountinfo`.
fn in_mountinfo(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.to_string_lossy();
    text.lines().any(|line| line.split(' ').nth(4) == Some(&*wanted))
}

fn run(command: &mut Command) -> io::Result<()> {
    let out = command
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io_other(format!("running {:?}: {e}", command.get_program())))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io_other(format!(
            "{:?} failed ({}): {}",
            command.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl DiskQuotas {
    /// Makes `data_root` (absolute) a shared mount point, so namespace
    /// filesystems mounted later reach workers' mount namespaces. Needs
    /// root, `mkfs.ext4` and loop devices; the error says which is missing.
    pub(crate) fn start(data_root: &Path, owner: Option<(u32, u32)>) -> io::Result<Self> {
        if !rustix::process::geteuid().is_root() {
            return Err(io_other("disk quotas need the host to run as root (to mount them)"));
        }
        if !Path::new("/dev/loop-control").exists() {
            return Err(io_other("disk quotas need loop devices (/dev/loop-control is missing)"));
        }
        run(Command::new("mkfs.ext4").arg("-V"))
            .map_err(|e| io_other(format!("disk quotas need mkfs.ext4 (e2fsprogs): {e}")))?;
        std::fs::create_dir_all(data_root.join(".images"))?;
        let bound_self = !in_mountinfo(data_root);
        if bound_self {
            rustix::mount::mount_bind(data_root, data_root)
                .map_err(|e| io_other(format!("bind-mounting {} on itself: {e}", data_root.display())))?;
        }
        rustix::mount::mount_change(data_root, rustix::mount::MountPropagationFlags::SHARED)
            .map_err(|e| io_other(format!("making {} a shared mount: {e}", data_root.display())))?;
        Ok(Self {
            data_root: data_root.to_owned(),
            owner,
            bound_self,
            mounted: Mutex::default(),
        })
    }

    fn image(&self, namespace: &Namespace) -> PathBuf {
        self.data_root.join(".images").join(format!("{namespace}.img"))
    }

    /// Mounts `namespace`'s filesystem over its directory if it is not
    /// already (creating the image, and moving data written before quotas
    /// into it). Blocking: file system work and child processes.
    pub(crate) fn ensure(&self, namespace: &Namespace, limits: DiskLimits) -> io::Result<()> {
        let mut mounted = self.mounted.lock().unwrap_or_else(PoisonError::into_inner);
        if mounted.contains(namespace) {
            return Ok(());
        }
        let dir = self.data_root.join(namespace.as_str());
        if !is_mount_point(&dir) {
            let image = self.image(namespace);
            if !image.exists() {
                self.create(&image, limits)?;
                self.adopt_existing(namespace, &image)?;
            }
            std::fs::create_dir_all(&dir)?;
            run(Command::new("mount")
                .args(["-t", "ext4", "-o", "loop,nosuid,nodev,noexec"])
                .arg(&image)
                .arg(&dir))?;
            tracing::info!(%namespace, "mounted its disk quota ({} bytes, {} files)", limits.bytes, limits.files);
        }
        mounted.insert(namespace.clone());
        Ok(())
    }

    /// A sparse image with an empty ext4 filesystem, its root owned by the
    /// workers' uid.
    fn create(&self, image: &Path, limits: DiskLimits) -> io::Result<()> {
        let partial = image.with_extension("img.partial");
        // Root's alone: the raw image is every file of the tenant.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)?;
        file.set_len(limits.bytes)?;
        drop(file);
        let mut mkfs = Command::new("mkfs.ext4");
        mkfs.args(["-q", "-F", "-m", "0", "-N"]).arg(limits.files.to_string());
        if let Some((uid, gid)) = self.owner {
            mkfs.arg("-E").arg(format!("root_owner={uid}:{gid}"));
        }
        let made = run(mkfs.arg(&partial)).and_then(|()| std::fs::rename(&partial, image));
        if made.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        made
    }

    /// Data written to `namespace`'s plain directory before it had a quota
    /// is copied into its new image; the old directory is kept, renamed,
    /// under `.images/`.
    fn adopt_existing(&self, namespace: &Namespace, image: &Path) -> io::Result<()> {
        let dir = self.data_root.join(namespace.as_str());
        let has_data = std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some());
        if !has_data {
            return Ok(());
        }
        let staging = self.data_root.join(".images").join(format!("{namespace}.adopting"));
        std::fs::create_dir_all(&staging)?;
        run(Command::new("mount")
            .args(["-t", "ext4", "-o", "loop,nosuid,nodev,noexec"])
            .arg(image)
            .arg(&staging))?;
        let copied = run(Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", dir.display()))
            .arg(&staging));
        let _ = rustix::mount::unmount(&staging, rustix::mount::UnmountFlags::empty());
        let _ = std::fs::remove_dir(&staging);
        if let Err(e) = copied {
            // The data stays where it was; without room for it there is no quota.
            let _ = std::fs::remove_file(image);
            return Err(io_other(format!(
                "{namespace}'s data does not fit its quota image ({e}); raise limits.disk"
            )));
        }
        let kept = self.data_root.join(".images").join(format!("{namespace}.before-quota"));
        std::fs::rename(&dir, &kept)?;
        tracing::warn!(%namespace, "moved its data into its new disk quota; the old copy is kept in {}", kept.display());
        Ok(())
    }

    /// Unmounts every namespace filesystem and the data root's own bind
    /// mount (at the host's shutdown, after its workers are gone; lazily,
    /// so a straggler holding one does not keep the host). The loop devices
    /// go with their last mount.
    pub(crate) fn unmount_all(&self) {
        let mut mounted = self.mounted.lock().unwrap_or_else(PoisonError::into_inner);
        for namespace in mounted.drain() {
            let dir = self.data_root.join(namespace.as_str());
            if let Err(e) = rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::DETACH) {
                tracing::warn!(%namespace, "unmounting its disk quota: {e}");
            }
        }
        if self.bound_self {
            let _ = rustix::mount::unmount(&self.data_root, rustix::mount::UnmountFlags::DETACH);
        }
    }

    /// Usage of every mounted namespace filesystem.
    pub(crate) fn usage(&self) -> Vec<(Namespace, DiskUsage)> {
        let mounted: Vec<Namespace> = self
            .mounted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        mounted
            .into_iter()
            .filter_map(|ns| {
                let stat = rustix::fs::statvfs(self.data_root.join(ns.as_str())).ok()?;
                let usage = DiskUsage {
                    used_bytes: (stat.f_blocks - stat.f_bfree) * stat.f_frsize,
                    limit_bytes: stat.f_blocks * stat.f_frsize,
                    used_files: stat.f_files - stat.f_ffree,
                    limit_files: stat.f_files,
                };
                Some((ns, usage))
            })
            .collect()
    }
}
