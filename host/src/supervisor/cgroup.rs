//! Per-worker cgroups: a memory and a pids limit for each worker process.
//!
//! Works with cgroup v2 (one unified hierarchy) and v1 (the `memory` and
//! `pids` controllers mounted separately, as on hosts that still use the
//! hybrid layout). The host creates `bulkhead-<host pid>/` under its own
//! cgroup and one `w<n>` child per worker. When the host may not create
//! cgroups (not root, read-only mounts, no controllers), workers run without
//! them and that is logged once.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Which cgroup layout the host found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    /// cgroup v2: `memory.max`, `pids.max`, `memory.events`.
    V2 { base: PathBuf },
    /// cgroup v1: `memory.limit_in_bytes` in one hierarchy, `pids.max` in another.
    V1 { memory: PathBuf, pids: PathBuf },
}

/// Creates per-worker cgroups under the host's own cgroup.
#[derive(Debug)]
pub(crate) struct Cgroups {
    layout: Option<Layout>,
    next: AtomicU64,
    warned: AtomicBool,
}

/// One worker's cgroup; removed on drop (once the worker is gone).
#[derive(Debug)]
pub(crate) struct WorkerCgroup {
    dirs: Vec<PathBuf>,
    oom_file: PathBuf,
}

/// The host's own path in a hierarchy, from `/proc/self/cgroup`.
fn own_path(proc_self_cgroup: &str, controller: Option<&str>) -> Option<String> {
    proc_self_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = match controller {
            None => controllers.is_empty(),
            Some(wanted) => controllers.split(',').any(|c| c == wanted),
        };
        matches.then(|| path.trim_start_matches('/').to_owned())
    })
}

fn detect(root: &Path) -> Option<Layout> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let host = format!("bulkhead-{}", std::process::id());
    if root.join("cgroup.controllers").exists() {
        let base = root.join(own_path(&own, None)?).join(host);
        return Some(Layout::V2 { base });
    }
    let memory = root.join("memory").join(own_path(&own, Some("memory"))?).join(&host);
    let pids = root.join("pids").join(own_path(&own, Some("pids"))?).join(&host);
    Some(Layout::V1 { memory, pids })
}

impl Cgroups {
    /// Finds the layout under `/sys/fs/cgroup`.
    pub(crate) fn detect() -> Self {
        Self {
            layout: detect(Path::new("/sys/fs/cgroup")),
            next: AtomicU64::new(0),
            warned: AtomicBool::new(false),
        }
    }

    /// No cgroups at all.
    pub(crate) fn disabled() -> Self {
        Self {
            layout: None,
            next: AtomicU64::new(0),
            warned: AtomicBool::new(true),
        }
    }

    /// Creates a cgroup with the given limits and moves `pid` into it.
    /// Returns `None` (logging the reason once) when that is not possible.
    pub(crate) fn attach(&self, pid: u32, memory_max: u64, pids_max: u64) -> Option<WorkerCgroup> {
        let layout = self.layout.as_ref()?;
        let name = format!("w{}", self.next.fetch_add(1, Ordering::Relaxed));
        match create(layout, &name, pid, memory_max, pids_max) {
            Ok(cgroup) => Some(cgroup),
            Err(e) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!("workers run without cgroup memory and pids limits: {e}");
                }
                None
            }
        }
    }

    /// Removes the host's cgroup directories (they must be empty).
    pub(crate) fn remove_host_dirs(&self) {
        let dirs: Vec<&PathBuf> = match &self.layout {
            Some(Layout::V2 { base }) => vec![base],
            Some(Layout::V1 { memory, pids }) => vec![memory, pids],
            None => vec![],
        };
        for dir in dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    std::fs::write(dir.join(file), value)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.join(file).display())))
}

fn create(layout: &Layout, name: &str, pid: u32, memory_max: u64, pids_max: u64) -> io::Result<WorkerCgroup> {
    let pid = pid.to_string();
    let mut cgroup = match layout {
        Layout::V2 { base } => {
            std::fs::create_dir_all(base)?;
            // Children of `base` need the controllers enabled in it.
            let _ = write(base, "cgroup.subtree_control", "+memory +pids");
            let dir = base.join(name);
            std::fs::create_dir(&dir)?;
            WorkerCgroup {
                oom_file: dir.join("memory.events"),
                dirs: vec![dir],
            }
        }
        Layout::V1 { memory, pids } => {
            let memory = memory.join(name);
            let pids = pids.join(name);
            std::fs::create_dir_all(&memory)?;
            std::fs::create_dir_all(&pids)?;
            WorkerCgroup {
                oom_file: memory.join("memory.oom_control"),
                dirs: vec![memory, pids],
            }
        }
    };
    let configured = (|| match layout {
        Layout::V2 { .. } => {
            let dir = &cgroup.dirs[0];
            write(dir, "memory.max", &memory_max.to_string())?;
            // Not every kernel has swap accounting; without it there is no swap to limit.
            let _ = write(dir, "memory.swap.max", "0");
            write(dir, "pids.max", &pids_max.to_string())?;
            write(dir, "cgroup.procs", &pid)
        }
        Layout::V1 { .. } => {
            let (memory, pids) = (&cgroup.dirs[0], &cgroup.dirs[1]);
            write(memory, "memory.limit_in_bytes", &memory_max.to_string())?;
            write(pids, "pids.max", &pids_max.to_string())?;
            write(memory, "cgroup.procs", &pid)?;
            write(pids, "cgroup.procs", &pid)
        }
    })();
    if let Err(e) = configured {
        cgroup.remove();
        cgroup.dirs.clear();
        return Err(e);
    }
    Ok(cgroup)
}

impl WorkerCgroup {
    /// Whether the kernel's OOM killer killed something in this cgroup.
    pub(crate) fn oom_killed(&self) -> bool {
        std::fs::read_to_string(&self.oom_file).is_ok_and(|text| {
            text.lines().any(|line| {
                line.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
            })
        })
    }

    fn remove(&self) {
        for dir in &self.dirs {
            if let Err(e) = std::fs::remove_dir(dir)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::debug!("removing cgroup {}: {e}", dir.display());
            }
        }
    }
}

impl Drop for WorkerCgroup {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/a/b\n1:cpu,cpuacct:/\n0::/\n";

    #[test]
    fn the_own_path_is_read_per_controller() {
        assert_eq!(own_path(HYBRID, Some("memory")).as_deref(), Some("a/b"));
        assert_eq!(own_path(HYBRID, Some("pids")).as_deref(), Some(""));
        assert_eq!(own_path(HYBRID, Some("cpuacct")).as_deref(), Some(""));
        assert_eq!(own_path(HYBRID, None).as_deref(), Some(""));
        assert_eq!(own_path("0::/user.slice/x\n", None).as_deref(), Some("user.slice/x"));
        assert_eq!(own_path("0::/\n", Some("memory")), None);
    }

    #[test]
    fn disabled_cgroups_attach_nothing() {
        assert!(Cgroups::disabled().attach(std::process::id(), 1 << 30, 64).is_none());
    }
}
