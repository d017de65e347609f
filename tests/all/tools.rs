//! Third-party programs the tests drive, installed on first use into the
//! target directory (never into the user's environment), pinned, and reused
//! by later runs. A tool that cannot be had fails its test with a message
//! naming it (see `needs`).

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The pinned Python packages of the tests' venv.
const PYTHON_PACKAGES: &[&str] = &["requests==2.32.3"];

/// Where installed tools live: under the target directory.
fn tools_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tools")
}

/// Serialises installs within this test binary.
static INSTALL: Mutex<()> = Mutex::new(());

/// The Python interpreter of a venv with [`PYTHON_PACKAGES`], made on first
/// use; `None` when `test` may skip (see `needs::facility`).
pub(crate) fn python(test: &str) -> Option<PathBuf> {
    let _installing = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let venv = tools_dir().join("python-venv");
    let python = venv.join("bin").join("python3");
    let marker = venv.join(format!("installed-{}", PYTHON_PACKAGES.join("+")));
    if marker.exists() {
        return Some(python);
    }
    let made = make_venv(&venv, &python);
    let facility = format!(
        "Python 3 with venv and pip, and {} from PyPI (installed into {})",
        PYTHON_PACKAGES.join(", "),
        venv.display()
    );
    match made {
        Ok(()) => {
            std::fs::write(&marker, b"").unwrap();
            Some(python)
        }
        Err(e) => {
            eprintln!("{test}: {e}");
            crate::needs::facility(test, &facility, false);
            None
        }
    }
}

/// Runs an install step; its output when it fails.
fn run(command: &mut Command) -> Result<(), String> {
    let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn make_venv(venv: &Path, python: &Path) -> Result<(), String> {
    std::fs::create_dir_all(venv.parent().unwrap()).map_err(|e| e.to_string())?;
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(venv))?;
    }
    run(Command::new(python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
        .args(PYTHON_PACKAGES))
}

/// The `prometheus` server of Debian's package, unpacked (not installed:
/// no service is registered or started) under the target directory on
/// first use; `None` when `test` may skip.
pub(crate) fn prometheus(test: &str) -> Option<PathBuf> {
    let _installing = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = tools_dir().join("prometheus");
    let binary = root.join("usr/bin/prometheus");
    if binary.exists() {
        return Some(binary);
    }
    let fetched = (|| -> Result<(), String> {
        let download = tools_dir().join("prometheus-download");
        std::fs::create_dir_all(&download).map_err(|e| e.to_string())?;
        run(Command::new("apt-get")
            .args(["download", "prometheus"])
            .current_dir(&download))?;
        let deb = std::fs::read_dir(&download)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or("apt-get download left no .deb")?;
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
        if binary.exists() {
            Ok(())
        } else {
            Err(format!("{} has no usr/bin/prometheus", deb.display()))
        }
    })();
    match fetched {
        Ok(()) => Some(binary),
        Err(e) => {
            eprintln!("{test}: {e}");
            let facility = format!(
                "Debian's prometheus package (apt-get download, unpacked into {})",
                root.display()
            );
            crate::needs::facility(test, &facility, false);
            None
        }
    }
}

/// How long building the polyglot guests may take: installing both
/// toolchains and building five components, on a slow shared machine.
const POLYGLOT_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// The Python and JavaScript example guests, built by `guests/polyglot.py`
/// with its pinned toolchains (componentize-py from PyPI, jco and
/// componentize-js from npm) installed under the target directory, and
/// reused while their inputs are unchanged. One path per name, in order;
/// `None` when `test` may skip because a toolchain (or Python itself) cannot
/// be had (see `needs::facility`). A guest the toolchain refuses fails the
/// test, and so does a build past [`POLYGLOT_DEADLINE`] (its process group
/// is killed).
pub(crate) fn polyglot(test: &str, names: &[&str]) -> Option<Vec<PathBuf>> {
    let _installing = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/polyglot.py");
    let out_dir = tools_dir().join("polyglot-guests");
    let mut stderr = tempfile::tempfile().unwrap();
    let spawned = Command::new("python3")
        .arg(&script)
        .arg("--tools")
        .arg(tools_dir())
        .arg("--out")
        .arg(&out_dir)
        .args(names)
        .stdout(Stdio::null())
        .stderr(stderr.try_clone().unwrap())
        .process_group(0)
        .spawn();
    let child = match spawned {
        Ok(child) => Group(child),
        Err(e) => {
            eprintln!("{test}: cannot run python3: {e}");
            crate::needs::facility(test, "python3 (to run guests/polyglot.py)", false);
            return None;
        }
    };
    let status = child
        .wait(POLYGLOT_DEADLINE)
        .unwrap_or_else(|| panic!("{test}: guests/polyglot.py {names:?} did not finish within {POLYGLOT_DEADLINE:?}"));
    let mut said = String::new();
    stderr.seek(SeekFrom::Start(0)).unwrap();
    stderr.read_to_string(&mut said).unwrap();
    match status.code() {
        Some(0) => Some(names.iter().map(|name| out_dir.join(format!("{name}.wasm"))).collect()),
        // polyglot.py's status for a toolchain it could not install or run.
        Some(3) => {
            eprintln!("{test}: {said}");
            let facility = format!(
                "the pinned guest toolchains for {} (componentize-py from PyPI; jco and componentize-js from npm, \
                 with Node.js), installed into {}",
                names.join(", "),
                tools_dir().display()
            );
            crate::needs::facility(test, &facility, false);
            None
        }
        _ => panic!("{test}: building {names:?} failed ({status}):\n{said}"),
    }
}

/// A child leading its own process group, which is killed (and the child
/// reaped) when dropped, so that nothing it started outlives a failed test.
struct Group(std::process::Child);

impl Group {
    /// Its exit status, or `None` when `deadline` passed first.
    fn wait(mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < deadline {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            // No exit notification to block on with a deadline: poll, at a
            // pace that leaves the CPU to the build.
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.0.wait();
    }
}

/// Runs `command` with its output captured and no stdin; `None` when it
/// did not exit within `within` (it is killed then, by pid: the child has
/// moved to the thread that waits for it).
pub(crate) fn output_within(command: &mut Command, within: Duration) -> Option<std::process::Output> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let pid = child.id();
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match wait.recv_timeout(within) {
        Ok(out) => Some(out.unwrap()),
        Err(_) => {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            None
        }
    }
}

/// A child process killed and reaped when dropped, even when a test fails.
pub(crate) struct Reaped(pub(crate) std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
