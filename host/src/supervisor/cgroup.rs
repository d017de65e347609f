//! Per-worker cgroups: a memory and a pids limit for each worker process.
//!
//! Works with cgroup v2 (one unified hierarchy) and v1 (the `memory` and
//! `pids` controllers mounted separately, as on hosts that still use the
//! hybrid layout). The host creates `bulkhead-<host pid>/` under its own
//! cgroup and one `w<n>` child per worker. When the host may not create
//! cgroups (not root, read-only mounts, no controllers), workers run without
//! them and that is logged once.
//!
//! Moving a running process into a cgroup (writing `cgroup.procs`) takes a
//! process-wide lock whose write side waits for an RCU grace period when
//! nothing has moved for a while: about 10 ms on an idle host, on the path
//! of every spawned worker. With cgroup v1 a thread may instead move itself
//! (writing `0` to `tasks`), which skips that lock; a process forked by that
//! thread is born in the thread's cgroups. So the spawner thread steps into
//! the new worker's cgroups, spawns, and steps back home
//! ([`WorkerCgroup::spawn_inside`]). With cgroup v2, whose memory and pids
//! controllers place whole processes only, the worker is moved after it
//! has been spawned ([`WorkerCgroup::add_process`]).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::ipc::CpuLimits;

/// Which cgroup layout the host found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    /// cgroup v2: `memory.max`, `pids.max`, `memory.events`.
    V2 { base: PathBuf },
    /// cgroup v1: `memory.limit_in_bytes` in one hierarchy, `pids.max` in
    /// another, `cpu.shares` and the CFS quota in a third when mounted.
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpu: Option<PathBuf>,
    },
}

/// Creates per-worker cgroups under the host's own cgroup.
#[derive(Debug)]
pub(crate) struct Cgroups {
    layout: Option<Layout>,
    next: AtomicU64,
    warned: AtomicBool,
}

/// How many times [`WorkerCgroup::kill_all`] reads the cgroup's members and
/// kills them: each round kills everything then present (a SIGKILLed task
/// forks no more), so only what was forked during a round remains for the
/// next, and `pids.max` bounds that.
const KILL_ROUNDS: usize = 1000;

/// One worker's cgroup; everything in it is killed and the cgroup removed
/// on drop (once the worker is gone).
#[derive(Debug)]
pub(crate) struct WorkerCgroup {
    dirs: Vec<PathBuf>,
    /// cgroup v1 only: the host's own cgroup in the same hierarchy as each of
    /// `dirs`, where a thread that stepped in goes back to.
    homes: Option<Vec<PathBuf>>,
    oom_file: PathBuf,
    /// Where `cpu.*` lives (one of `dirs`), if the cpu controller is there.
    cpu: Option<PathBuf>,
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
    let cpu = own_path(&own, Some("cpu"))
        .map(|path| root.join("cpu").join(path).join(&host))
        .filter(|dir| dir.parent().is_some_and(|p| p.join("cpu.shares").exists()));
    Some(Layout::V1 { memory, pids, cpu })
}

/// The cgroup layout of this machine, in words (for `sandbox check`).
pub fn cgroup_layout() -> String {
    match detect(Path::new("/sys/fs/cgroup")) {
        Some(Layout::V2 { base }) => format!("v2 (workers under {})", base.parent().unwrap_or(&base).display()),
        Some(Layout::V1 { memory, pids, cpu }) => format!(
            "v1 (memory under {}, pids under {}, cpu {})",
            memory.parent().unwrap_or(&memory).display(),
            pids.parent().unwrap_or(&pids).display(),
            cpu.as_ref().map_or("not mounted".into(), |cpu| format!(
                "under {}",
                cpu.parent().unwrap_or(cpu).display()
            ))
        ),
        None => "none found".into(),
    }
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

    /// Creates an empty cgroup with the given limits for the next worker.
    /// Returns `None` (logging the reason once) when that is not possible.
    pub(crate) fn create(&self, memory_max: u64, pids_max: u64) -> Option<WorkerCgroup> {
        let layout = self.layout.as_ref()?;
        let name = format!("w{}", self.next.fetch_add(1, Ordering::Relaxed));
        create(layout, &name, memory_max, pids_max)
            .map_err(|e| self.warn_once(&e))
            .ok()
    }

    /// Logs, once per host, that workers run without cgroup limits.
    pub(crate) fn warn_once(&self, e: &io::Error) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!("workers run without cgroup memory and pids limits: {e}");
        }
    }

    /// The host's cgroup directories, one per hierarchy.
    fn host_dirs(&self) -> Vec<&PathBuf> {
        match &self.layout {
            Some(Layout::V2 { base }) => vec![base],
            Some(Layout::V1 { memory, pids, cpu }) => {
                [Some(memory), cpu.as_ref(), Some(pids)].into_iter().flatten().collect()
            }
            None => vec![],
        }
    }

    /// Removes the host's cgroup directories (they must be empty).
    pub(crate) fn remove_host_dirs(&self) {
        for dir in self.host_dirs() {
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// Removes what hosts that are gone (killed, so they could not clean up)
    /// left beside this host's directories: `bulkhead-<pid>/` whose pid no
    /// longer runs, with their emptied worker cgroups. A directory that
    /// still holds a process stays.
    pub(crate) fn remove_stale(&self) {
        let removed: usize = self
            .host_dirs()
            .into_iter()
            .filter_map(|dir| dir.parent())
            .map(remove_stale_hosts)
            .sum();
        if removed > 0 {
            tracing::info!("removed {removed} cgroup directories left by bulkhead hosts that are gone");
        }
    }
}

/// Removes the `bulkhead-<pid>` directories in `parent` whose host is gone;
/// returns how many directories went.
fn remove_stale_hosts(parent: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    let stale = entries.filter_map(Result::ok).filter(|entry| {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("bulkhead-"))
            .and_then(|n| n.parse::<i32>().ok());
        pid.and_then(rustix::process::Pid::from_raw)
            .is_some_and(|pid| matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH)))
    });
    let mut removed = 0;
    for host in stale {
        let host = host.path();
        let workers = std::fs::read_dir(&host).into_iter().flatten().filter_map(Result::ok);
        for worker in workers.filter(|w| w.file_type().is_ok_and(|t| t.is_dir())) {
            removed += usize::from(std::fs::remove_dir(worker.path()).is_ok());
        }
        removed += usize::from(std::fs::remove_dir(&host).is_ok());
    }
    removed
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    std::fs::write(dir.join(file), value)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.join(file).display())))
}

fn create(layout: &Layout, name: &str, memory_max: u64, pids_max: u64) -> io::Result<WorkerCgroup> {
    let mut cgroup = match layout {
        Layout::V2 { base } => {
            std::fs::create_dir_all(base)?;
            // Children of `base` need the controllers enabled in it.
            let _ = write(base, "cgroup.subtree_control", "+memory +pids");
            // The cpu controller is optional: without it, no CPU limits.
            let _ = write(base, "cgroup.subtree_control", "+cpu");
            let dir = base.join(name);
            std::fs::create_dir(&dir)?;
            WorkerCgroup {
                oom_file: dir.join("memory.events"),
                cpu: dir.join("cpu.weight").exists().then(|| dir.clone()),
                dirs: vec![dir],
                homes: None,
            }
        }
        Layout::V1 { memory, pids, cpu } => {
            // The pids hierarchy last: `kill_all` reads its members.
            let bases: Vec<&PathBuf> = [Some(memory), cpu.as_ref(), Some(pids)].into_iter().flatten().collect();
            let homes: Option<Vec<PathBuf>> = bases.iter().map(|base| base.parent().map(Path::to_owned)).collect();
            let Some(homes) = homes else {
                return Err(io::Error::other("a cgroup v1 directory has no parent"));
            };
            let dirs: Vec<PathBuf> = bases.iter().map(|base| base.join(name)).collect();
            for dir in &dirs {
                std::fs::create_dir_all(dir)?;
            }
            WorkerCgroup {
                oom_file: dirs[0].join("memory.oom_control"),
                cpu: cpu.as_ref().map(|base| base.join(name)),
                dirs,
                homes: Some(homes),
            }
        }
    };
    let configured = match layout {
        Layout::V2 { .. } => {
            let dir = &cgroup.dirs[0];
            write(dir, "memory.max", &memory_max.to_string()).and_then(|()| {
                // Not every kernel has swap accounting; without it there is no swap to limit.
                let _ = write(dir, "memory.swap.max", "0");
                write(dir, "pids.max", &pids_max.to_string())
            })
        }
        Layout::V1 { .. } => {
            let (memory, pids) = (&cgroup.dirs[0], &cgroup.dirs[cgroup.dirs.len() - 1]);
            write(memory, "memory.limit_in_bytes", &memory_max.to_string())
                .and_then(|()| write(pids, "pids.max", &pids_max.to_string()))
        }
    };
    if let Err(e) = configured {
        cgroup.remove();
        cgroup.dirs.clear();
        return Err(e);
    }
    Ok(cgroup)
}

impl WorkerCgroup {
    /// Runs `spawn` on the calling thread while that thread is inside this
    /// cgroup, so that the process it starts is born in it, and returns
    /// whether it was (else the caller must [`add_process`] it). Only cgroup
    /// v1 lets a thread move alone; with v2 `spawn` runs where the thread
    /// is. The thread is back in the host's own cgroups on return; if it
    /// cannot get back (which only an outside change to the hierarchy can
    /// cause), that is logged and the cgroup cannot be removed later.
    ///
    /// [`add_process`]: WorkerCgroup::add_process
    pub(crate) fn spawn_inside<T>(&self, spawn: impl FnOnce() -> T) -> (T, bool) {
        let Some(homes) = &self.homes else {
            return (spawn(), false);
        };
        let entered = self.dirs.iter().try_for_each(|dir| write(dir, "tasks", "0"));
        if let Err(e) = &entered {
            tracing::debug!("spawning outside the worker's cgroup, to move it afterwards: {e}");
        }
        let spawned = spawn();
        if let Err(e) = homes.iter().try_for_each(|home| write(home, "tasks", "0")) {
            tracing::error!("the spawner thread cannot return to the host's cgroup: {e}");
        }
        (spawned, entered.is_ok())
    }

    /// Applies a tenant's CPU weight and cap. An error when the cpu
    /// controller is not available here.
    pub(crate) fn set_cpu(&self, limits: &CpuLimits) -> io::Result<()> {
        let Some(dir) = &self.cpu else {
            return Err(io::Error::other("the cpu controller is not available"));
        };
        let weight = limits.weight.clamp(1, 10_000);
        if self.homes.is_none() {
            let max = limits.quota_us().map_or("max".to_owned(), |q| q.to_string());
            write(dir, "cpu.weight", &weight.to_string())?;
            write(dir, "cpu.max", &format!("{max} {}", CpuLimits::PERIOD_US))
        } else {
            let shares = (u64::from(weight) * 1024 / 100).max(2);
            write(dir, "cpu.shares", &shares.to_string())?;
            write(dir, "cpu.cfs_period_us", &CpuLimits::PERIOD_US.to_string())?;
            let quota = limits.quota_us().map_or("-1".to_owned(), |q| q.to_string());
            write(dir, "cpu.cfs_quota_us", &quota)
        }
    }

    /// Moves the process `pid` into this cgroup.
    pub(crate) fn add_process(&self, pid: u32) -> io::Result<()> {
        let pid = pid.to_string();
        self.dirs.iter().try_for_each(|dir| write(dir, "cgroup.procs", &pid))
    }

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

    /// Kills every process left in the cgroup: what the worker forked (only
    /// an escaped guest can fork), even if it ignores SIGTERM, double-forked
    /// or left the session. cgroup v2 has `cgroup.kill`; with v1 every
    /// member of the pids cgroup is SIGKILLed, round after round, until
    /// none is left. Returns how many were killed.
    pub(crate) fn kill_all(&self) -> usize {
        let Some(members) = self.dirs.last().map(|dir| dir.join("cgroup.procs")) else {
            return 0;
        };
        if self.homes.is_none() {
            let _ = write(&self.dirs[0], "cgroup.kill", "1");
        }
        let mut killed = 0;
        for _ in 0..KILL_ROUNDS {
            let Ok(text) = std::fs::read_to_string(&members) else {
                return killed; // the cgroup is gone
            };
            let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if pids.is_empty() {
                return killed;
            }
            for pid in pids.into_iter().filter_map(rustix::process::Pid::from_raw) {
                if rustix::process::kill_process(pid, rustix::process::Signal::KILL).is_ok() {
                    killed += 1;
                }
            }
            std::thread::yield_now();
        }
        tracing::warn!(cgroup = %members.display(), "processes still in a worker's cgroup after {KILL_ROUNDS} rounds of kills");
        killed
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
        self.kill_all();
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
    fn directories_of_hosts_that_are_gone_are_removed_and_the_others_kept() {
        let root = tempfile::tempdir().unwrap();
        let exited = || {
            let mut child = std::process::Command::new("true").spawn().unwrap();
            child.wait().unwrap();
            format!("bulkhead-{}", child.id())
        };
        let (gone, busy) = (exited(), exited());
        // A cgroup that still holds a process cannot be removed; a
        // directory with a file in it stands for one here.
        std::fs::create_dir_all(root.path().join(&busy).join("w3")).unwrap();
        std::fs::write(root.path().join(&busy).join("w3/held"), "").unwrap();
        let dirs = [
            format!("{gone}/w0"),
            format!("{gone}/w7"),
            format!("{busy}/w3"),
            format!("bulkhead-{}/w0", std::process::id()),
            "bulkhead-1/w0".to_owned(),
            "bulkhead-probe/w0".to_owned(),
            "other/w0".to_owned(),
        ];
        for dir in &dirs {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        assert_eq!(remove_stale_hosts(root.path()), 3);
        assert!(!root.path().join(&gone).exists());
        assert!(
            root.path().join(&busy).is_dir(),
            "a host directory whose worker cgroup stays, stays"
        );
        for kept in &dirs[2..] {
            assert!(root.path().join(kept).is_dir(), "{kept} is kept");
        }
        assert_eq!(remove_stale_hosts(root.path()), 0, "nothing left to remove");
    }

    #[test]
    fn disabled_cgroups_create_nothing() {
        assert!(Cgroups::disabled().create(1 << 30, 64).is_none());
    }
}
