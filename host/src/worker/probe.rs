//! `bulkhead sandbox probe`: a stand-in for an escaped guest.
//!
//! It enters exactly the worker's jail ([`Jail::enter`], the same code
//! path, with the same arguments the host gives a worker), optionally takes
//! the assignment step for a namespace ([`Jail::confine_to`]), and then
//! tries, natively, each thing it is asked to: open a file for reading or
//! writing, write many bytes, connect to an address, signal or `ptrace` a
//! process, fork, exec. Each attempt prints one JSON line saying whether it
//! was allowed. A seccomp violation kills the probe instead (the test sees
//! `SIGSYS`), so an attempt the allow-list forbids is best run alone.
//! `--report` prints the jail's [`Report`](super::jail::Report) instead.
//!
//! With `--sandbox off` the same attempts are the positive control: each
//! must succeed, or the denial seen with the sandbox proves nothing.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::jail::{Jail, Layer};
use super::{EXIT_START, JailArgs};
use crate::names::Namespace;

/// Arguments of `bulkhead sandbox probe`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub jail: JailArgs,
    /// Apply only these layers (default: all, as a worker does).
    #[arg(long, value_enum)]
    pub only: Vec<ProbeLayer>,
    /// Take the assignment step for this namespace after the jail.
    #[arg(long)]
    pub namespace: Option<Namespace>,
    /// Print the jail's report as JSON and exit.
    #[arg(long)]
    pub report: bool,
    /// Run the attempts on a second thread, started after the jail and
    /// before the assignment step (as a worker's epoch ticker is), which
    /// must take the namespace's layer as well.
    #[arg(long)]
    pub from_thread: bool,
    /// What to try: `read:PATH`, `write:PATH`, `fill:PATH:BYTES`,
    /// `connect:ADDR`, `signal:PID`, `ptrace:PID`, `setown:PID` (who gets
    /// the descriptor's signals), `fork`, `exec:PATH`.
    #[arg(long = "attempt")]
    pub attempts: Vec<String>,
}

/// A layer, as the probe's command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeLayer {
    Namespaces,
    Identity,
    Landlock,
    Seccomp,
}

impl From<ProbeLayer> for Layer {
    fn from(layer: ProbeLayer) -> Self {
        match layer {
            ProbeLayer::Namespaces => Layer::Namespaces,
            ProbeLayer::Identity => Layer::Identity,
            ProbeLayer::Landlock => Layer::Landlock,
            ProbeLayer::Seccomp => Layer::Seccomp,
        }
    }
}

/// Runs the probe; its exit code.
pub fn run(args: &ProbeArgs) -> ExitCode {
    super::log::init("warn");
    let mut spec = args.jail.spec();
    if !args.only.is_empty() {
        spec.layers = args.only.iter().copied().map(Layer::from).collect();
    }
    let data_dir = spec.data_dir.clone();
    let jail = match Jail::enter(spec, None) {
        Ok(jail) => jail,
        Err(e) => {
            eprintln!("probe: {e}");
            return ExitCode::from(EXIT_START);
        }
    };
    let helper = args.from_thread.then(Helper::start);
    if let Some(namespace) = &args.namespace {
        let dir = data_dir.join(namespace.as_str());
        let run = |job| helper.as_ref().map_or(Ok(()), |h| h.run(job));
        let with_helper: [&dyn Fn(super::jail::Job) -> Result<(), String>; 1] = [&run];
        let others: &[&dyn Fn(super::jail::Job) -> Result<(), String>] =
            if helper.is_some() { &with_helper } else { &[] };
        if let Err(e) = std::fs::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .and_then(|()| jail.confine_to(&dir, others).map_err(|e| e.to_string()))
        {
            eprintln!("probe: {e}");
            return ExitCode::from(EXIT_START);
        }
    }
    let mut stdout = std::io::stdout().lock();
    if args.report {
        let line = serde_json::to_string(jail.report()).unwrap_or_default();
        let _ = writeln!(stdout, "{line}");
        return ExitCode::SUCCESS;
    }
    for attempt in &args.attempts {
        let result = match &helper {
            Some(helper) => helper.call(attempt.clone()),
            None => try_one(attempt),
        };
        let line = serde_json::json!({
            "attempt": attempt,
            "allowed": result.is_ok(),
            "detail": result.unwrap_or_else(|e| e),
        });
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
    ExitCode::SUCCESS
}

/// A second thread that runs what it is given, as a worker's epoch ticker.
struct Helper {
    jobs: std::sync::mpsc::Sender<super::jail::Job>,
}

impl Helper {
    fn start() -> Self {
        let (jobs, rx) = std::sync::mpsc::channel::<super::jail::Job>();
        std::thread::spawn(move || {
            for job in rx {
                job();
            }
        });
        Self { jobs }
    }

    fn run(&self, job: super::jail::Job) -> Result<(), String> {
        self.jobs.send(job).map_err(|_| "the helper thread is gone".to_owned())
    }

    /// [`try_one`] on the helper thread.
    fn call(&self, attempt: String) -> Result<String, String> {
        let (done, wait) = std::sync::mpsc::channel();
        self.run(Box::new(move || {
            let _ = done.send(try_one(&attempt));
        }))?;
        wait.recv().map_err(|_| "the helper thread died".to_owned())?
    }
}

/// One attempt: `Ok` with what happened if it was allowed, `Err` with the
/// error if it was refused.
fn try_one(attempt: &str) -> Result<String, String> {
    let (what, arg) = attempt.split_once(':').unwrap_or((attempt, ""));
    let os = |e: std::io::Error| e.to_string();
    match what {
        "read" => std::fs::read(arg)
            .map(|b| format!("read {} bytes", b.len()))
            .map_err(os),
        "write" => std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(arg)
            .map(|_| "opened for writing".into())
            .map_err(os),
        "fill" => {
            let (path, bytes) = arg.rsplit_once(':').ok_or("fill:PATH:BYTES")?;
            let bytes: usize = bytes.parse().map_err(|e| format!("{e}"))?;
            let mut file = std::fs::File::create(PathBuf::from(path)).map_err(os)?;
            let chunk = vec![0x5a; 1 << 16];
            let mut written = 0;
            while written < bytes {
                let n = chunk.len().min(bytes - written);
                file.write_all(&chunk[..n])
                    .map_err(|e| format!("after {written} bytes: {e}"))?;
                written += n;
            }
            file.sync_all().map_err(os)?;
            Ok(format!("wrote {written} bytes"))
        }
        "connect" => {
            let addr: std::net::SocketAddr = arg.parse().map_err(|e| format!("{e}"))?;
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                .map(|_| "connected".into())
                .map_err(os)
        }
        "signal" => {
            let pid: i32 = arg.parse().map_err(|e| format!("{e}"))?;
            // SAFETY: signal 0 delivers nothing; it only checks permission.
            match unsafe { libc::kill(pid, 0) } {
                0 => Ok("may signal it".into()),
                _ => Err(std::io::Error::last_os_error().to_string()),
            }
        }
        "ptrace" => {
            let pid: i32 = arg.parse().map_err(|e| format!("{e}"))?;
            // SAFETY: PTRACE_SEIZE takes no pointer; the tracee is neither
            // stopped nor changed, and is released when the probe exits.
            match unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0usize, 0usize) } {
                0 => Ok("attached".into()),
                _ => Err(std::io::Error::last_os_error().to_string()),
            }
        }
        "fork" => {
            // SAFETY: the child only calls `_exit`, which is
            // async-signal-safe; the probe is single-threaded anyway.
            match unsafe { libc::fork() } {
                -1 => Err(std::io::Error::last_os_error().to_string()),
                // SAFETY: in the child, `_exit` ends it without running
                // anything of the parent's state.
                0 => unsafe { libc::_exit(0) },
                child => {
                    let mut status = 0;
                    // SAFETY: waits for the child just forked.
                    unsafe { libc::waitpid(child, &mut status, 0) };
                    Ok(format!("forked {child}"))
                }
            }
        }
        "setown" => {
            let pid: i32 = arg.parse().map_err(|e| format!("{e}"))?;
            // SAFETY: F_SETOWN on standard output takes an integer; it only
            // names who gets SIGIO/SIGURG for that descriptor.
            match unsafe { libc::fcntl(1, libc::F_SETOWN, pid) } {
                -1 => Err(std::io::Error::last_os_error().to_string()),
                _ => Ok("owner set".into()),
            }
        }
        "exec" => {
            use std::os::unix::process::CommandExt;
            // Replaces the probe on success: the program's own output says so.
            let e = std::process::Command::new(arg).arg("--version").exec();
            Err(e.to_string())
        }
        other => Err(format!("unknown attempt {other:?}")),
    }
}
