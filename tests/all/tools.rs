//! Third-party programs the tests drive, installed on first use into the
//! target directory (never into the user's environment), pinned, and reused
//! by later runs. A tool that cannot be had fails its test with a message
//! naming it (see `needs`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

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

/// The Python and JavaScript example guests, built by `guests/polyglot.py`
/// with its pinned toolchains (componentize-py from PyPI, jco and
/// componentize-js from npm) installed under the target directory, and
/// reused while their inputs are unchanged. One path per name, in order;
/// `None` when `test` may skip because a toolchain cannot be had (see
/// `needs::facility`). A guest the toolchain refuses fails the test.
pub(crate) fn polyglot(test: &str, names: &[&str]) -> Option<Vec<PathBuf>> {
    let _installing = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/polyglot.py");
    let out_dir = tools_dir().join("polyglot-guests");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--tools")
        .arg(tools_dir())
        .arg("--out")
        .arg(&out_dir)
        .args(names)
        .output()
        .unwrap_or_else(|e| panic!("{test}: cannot run python3 {}: {e}", script.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Some(names.iter().map(|name| out_dir.join(format!("{name}.wasm"))).collect()),
        // polyglot.py's status for a toolchain it could not install or run.
        Some(3) => {
            eprintln!("{test}: {stderr}");
            let facility = format!(
                "the pinned guest toolchains for {} (componentize-py from PyPI; jco and componentize-js from npm, \
                 with Node.js), installed into {}",
                names.join(", "),
                tools_dir().display()
            );
            crate::needs::facility(test, &facility, false);
            None
        }
        _ => panic!("{test}: building {names:?} failed ({}):\n{stderr}", out.status),
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
