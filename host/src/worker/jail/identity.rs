//! An unprivileged uid and gid for the worker when the host runs as root
//! (`worker.uid`, `worker.gid`): with no supplementary groups, and, since
//! every uid leaves 0, no capabilities. The worker can then neither signal
//! nor `ptrace` the host, write files it does not own (the host's binary,
//! `/etc`, the cache and the plugin store, all root's), nor raise its hard
//! rlimits. The host, still root, reads everything a tenant writes.
//!
//! The calls change the calling thread only; the jail runs while the worker
//! has a single thread, so that is the whole process.

use rustix::process::{Gid, Uid};
use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};

use super::Outcome;

pub(super) fn become_user(identity: Option<(u32, u32)>) -> Outcome {
    if !rustix::process::geteuid().is_root() {
        return Outcome::Unavailable("the host is not root: workers keep its unprivileged uid".into());
    }
    let Some((uid, gid)) = identity else {
        return Outcome::Unavailable("no worker.uid is configured".into());
    };
    if uid == 0 || gid == 0 {
        return Outcome::Unavailable("worker.uid or worker.gid is 0".into());
    }
    let step = |what: &str, e: rustix::io::Errno| Outcome::Broken(format!("{what}: {e}"));
    if let Err(e) = set_thread_groups(&[]) {
        return step("setgroups", e);
    }
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    if let Err(e) = set_thread_res_gid(gid, gid, gid) {
        return step("setresgid", e);
    }
    if let Err(e) = set_thread_res_uid(uid, uid, uid) {
        return step("setresuid", e);
    }
    match rustix::thread::capabilities(None) {
        Ok(caps) if caps.effective.is_empty() && caps.permitted.is_empty() => {}
        Ok(caps) => return Outcome::Broken(format!("capabilities remain after the uid change: {caps:?}")),
        Err(e) => return step("capget", e),
    }
    Outcome::On(format!(
        "uid {}, gid {}, no supplementary groups, no capabilities",
        uid.as_raw(),
        gid.as_raw()
    ))
}
