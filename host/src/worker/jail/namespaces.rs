//! New namespaces, so an escaped guest sees none of the machine.
//!
//! Mount: the worker's root becomes an empty tmpfs (read-only once built)
//! holding only the compile cache (read-only, no devices, no setuid) and the
//! data root (no exec, no devices, no setuid), each at its host path so the
//! paths the host sends stay valid; the host's tree, its binary, the plugin
//! store, `/etc`, `/proc`, `/sys` (and with it the cgroup files) are not
//! there to open. Network: a namespace of its own with only a loopback
//! interface, down, so no socket reaches the host's API or the network even
//! before seccomp refuses to make one. IPC and UTS: nothing shared with the
//! host's System V objects or host name.
//!
//! The cache may lie inside the data root (its default place): it is then
//! mounted read-only over its own directory there. The data root's other
//! `.` directories (the plugin store, the quota images) are covered by an
//! empty read-only tmpfs.
//!
//! These need root (in the host's user namespace). A user namespace would
//! give them to an unprivileged host too, but it would also give the worker
//! every capability inside it, a large kernel surface for an escaped guest;
//! when the host runs as root, the uid drop (`identity.rs`) does better. So
//! an unprivileged host reports this layer unavailable.

use std::path::{Path, PathBuf};

use rustix::mount::{
    MountFlags, MountPropagationFlags, UnmountFlags, mount, mount_bind_recursive, mount_change, mount_remount, unmount,
};
use rustix::thread::UnshareFlags;

use super::Outcome;

/// Directories that may hold the tmpfs the new root is built in; any one
/// that exists will do, since it is covered in the worker's namespace only.
const STAGING: [&str; 4] = ["/tmp", "/mnt", "/run", "/var/tmp"];

pub(super) fn enter(cache: &Path, data: &Path) -> Outcome {
    if !rustix::process::geteuid().is_root() {
        return Outcome::Unavailable("mount and network namespaces need the host to run as root".into());
    }
    if !cache.is_absolute() || !data.is_absolute() {
        return Outcome::Broken("the cache and data directories must be absolute paths".into());
    }
    // Not above either directory: they are bound in by path after the
    // staging directory is covered.
    let Some(staging) = STAGING
        .iter()
        .map(Path::new)
        .find(|p| p.is_dir() && !cache.starts_with(p) && !data.starts_with(p))
    else {
        return Outcome::Unavailable(format!(
            "none of {STAGING:?} exists outside the cache and data directories to build the root in"
        ));
    };
    let flags = UnshareFlags::NEWNS | UnshareFlags::NEWNET | UnshareFlags::NEWIPC | UnshareFlags::NEWUTS;
    // SAFETY: CLONE_FILES is not among the flags, so no thread can lose
    // sight of a descriptor; the process has a single thread anyway.
    if let Err(e) = unsafe { rustix::thread::unshare_unsafe(flags) } {
        return Outcome::Unavailable(format!("unshare(mount, network, ipc, uts): {e}"));
    }
    match build_root(staging, cache, data) {
        Ok(()) => Outcome::On(format!(
            "mount, network, ipc, uts; the root holds only {} (read-only) and {}",
            cache.display(),
            data.display()
        )),
        Err(e) => Outcome::Broken(e),
    }
}

/// Inside the new mount namespace: builds a root of the two directories and
/// pivots into it.
fn build_root(staging: &Path, cache: &Path, data: &Path) -> Result<(), String> {
    let step = |what: &str, e: rustix::io::Errno| format!("{what}: {e}");
    // Nothing mounted from here on propagates back to the host; what the
    // host mounts in a shared data root (a namespace's disk quota) still
    // propagates in.
    mount_change("/", MountPropagationFlags::REC | MountPropagationFlags::DOWNSTREAM)
        .map_err(|e| step("making / a slave", e))?;
    let mut trees = [
        (cache, MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV),
        (data, MountFlags::NOEXEC | MountFlags::NOSUID | MountFlags::NODEV),
    ];
    // The outer one first when one is inside the other (the default cache,
    // `<data.dir>/.cache`): the inner one is then mounted over its own
    // directory in the outer tree, so a read-only cache stays read-only
    // inside a writable data root.
    trees.sort_by_key(|(path, _)| path.components().count());
    let hardening = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    mount("tmpfs", staging, "tmpfs", hardening, c"size=1m,nr_inodes=64,mode=0755")
        .map_err(|e| step("mounting the new root", e))?;
    for (path, flags) in trees {
        let inside = inside(staging, path);
        std::fs::create_dir_all(&inside).map_err(|e| format!("creating {}: {e}", inside.display()))?;
        // Recursive: the namespaces' quota filesystems already mounted in
        // the data root come along (as slaves, like the later ones).
        mount_bind_recursive(path, &inside).map_err(|e| step(&format!("mounting {}", path.display()), e))?;
        mount_remount(&inside, MountFlags::BIND | flags, c"")
            .map_err(|e| step(&format!("restricting {}", path.display()), e))?;
    }
    hide_host_entries(staging, cache, data)?;
    let old = staging.join(".old");
    std::fs::create_dir(&old).map_err(|e| format!("creating {}: {e}", old.display()))?;
    rustix::process::pivot_root(staging, &old).map_err(|e| step("pivot_root", e))?;
    rustix::process::chdir("/").map_err(|e| step("chdir /", e))?;
    unmount("/.old", UnmountFlags::DETACH).map_err(|e| step("detaching the host's tree", e))?;
    std::fs::remove_dir("/.old").map_err(|e| format!("removing /.old: {e}"))?;
    mount_remount("/", MountFlags::RDONLY | hardening, c"").map_err(|e| step("making the root read-only", e))?;
    Ok(())
}

/// Covers each directory of the data root whose name starts with `.` (the
/// host's: the plugin store, the quota images; never a namespace), except
/// the cache or one holding it, with an empty read-only tmpfs: a worker
/// sees no other tenant's plugins nor anyone's raw filesystem image.
fn hide_host_entries(staging: &Path, cache: &Path, data: &Path) -> Result<(), String> {
    let entries = std::fs::read_dir(data).map_err(|e| format!("listing {}: {e}", data.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.')
            && entry.file_type().is_ok_and(|t| t.is_dir())
            && !cache.starts_with(&path);
        if hidden {
            let inside = inside(staging, &path);
            let flags = MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
            mount("tmpfs", &inside, "tmpfs", flags, c"size=4k,nr_inodes=1,mode=000")
                .map_err(|e| format!("hiding {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Where `path` (absolute) lives under the new root being built at `staging`.
fn inside(staging: &Path, path: &Path) -> PathBuf {
    staging.join(path.strip_prefix("/").unwrap_or(path))
}
