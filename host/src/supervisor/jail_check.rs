//! What the sandbox amounts to on this machine, found by entering it: the
//! host runs `bulkhead sandbox probe --report` once with a worker's exact
//! jail arguments and reads back which layers went on. `bulkhead sandbox
//! check` prints the same; the host logs it once at start and serves it in
//! the health report, and with `worker.sandbox = "strict"` refuses to start
//! when a layer is missing (the probe's error names it).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::spawner::WorkerCommand;
use crate::sandbox::SandboxConfig;
use crate::worker::jail::Report;

/// How long the probe may take (it does what a worker does before its
/// runtime starts: milliseconds).
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Enters a worker's jail in a throwaway process; its report, or why not.
pub fn check(command: &WorkerCommand, sandbox: &SandboxConfig) -> Result<Report, String> {
    let mut child = Command::new(&command.program)
        .arg("sandbox")
        .arg("probe")
        .args(command.jail(sandbox).args())
        .arg("--report")
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {} sandbox probe: {e}", command.program.display()))?;
    let pid = child.id();
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("the probe's output was not piped".into());
    };
    let (done, wait) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let (mut out, mut err) = (String::new(), String::new());
        let _ = stdout.read_to_string(&mut out);
        let _ = stderr.read_to_string(&mut err);
        let _ = done.send(());
        (out, err)
    });
    if wait.recv_timeout(PROBE_TIMEOUT).is_err()
        && let Some(pid) = rustix::process::Pid::from_raw(pid as i32)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    let status = child.wait().map_err(|e| format!("waiting for the probe: {e}"))?;
    let (out, err) = reader.join().map_err(|_| "the probe's reader panicked".to_string())?;
    if !status.success() {
        let err = err.trim();
        let err = err.strip_prefix("probe: ").unwrap_or(err);
        return Err(if err.is_empty() {
            format!("the sandbox probe ended with {status}")
        } else {
            err.to_owned()
        });
    }
    serde_json::from_str(out.trim()).map_err(|e| format!("the probe's report does not parse ({e}): {out:?}"))
}
