//! Resource limits the kernel enforces on the worker itself: no core dumps
//! (a core would hold tenants' memory), a bounded number of open files, and
//! a bounded file size. `SIGXFSZ` is ignored so that a write past
//! `RLIMIT_FSIZE` fails with `EFBIG`, which the guest sees as its own error,
//! instead of killing the worker.

use rustix::process::{Resource, Rlimit, setrlimit};

use super::JailError;

pub(super) fn apply(open_files: u64, file_size: Option<u64>) -> Result<(), JailError> {
    let set = |resource, limit: u64, what| {
        let limit = Rlimit {
            current: Some(limit),
            maximum: Some(limit),
        };
        setrlimit(resource, limit).map_err(|e| JailError::Hygiene { what, source: e.into() })
    };
    set(Resource::Core, 0, "cannot set RLIMIT_CORE")?;
    set(Resource::Nofile, open_files, "cannot set RLIMIT_NOFILE")?;
    if let Some(size) = file_size {
        // SAFETY: setting a signal's disposition to "ignore" installs no
        // handler, so no code can run at an unexpected time.
        if unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) } == libc::SIG_ERR {
            return Err(JailError::Hygiene {
                what: "cannot ignore SIGXFSZ",
                source: std::io::Error::last_os_error(),
            });
        }
        set(Resource::Fsize, size, "cannot set RLIMIT_FSIZE")?;
    }
    Ok(())
}
