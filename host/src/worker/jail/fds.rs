//! No descriptor the worker did not ask for: everything inherited above
//! standard error is closed (a library's descriptor without close-on-exec
//! in the host, say), so standard input (the IPC socket), output
//! (`/dev/null`) and error (the log pipe) are all it holds.

use super::JailError;

/// Closes every descriptor from 3 up (`close_range`, Linux 5.9).
pub(super) fn close_inherited() -> Result<(), JailError> {
    // SAFETY: a plain system call on integers. Nothing in this process owns
    // a descriptor above 2 yet: the jail runs before the worker opens any of
    // its own, so no Rust object refers to what is closed here.
    let closed = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if closed != 0 {
        return Err(JailError::Hygiene {
            what: "cannot close the inherited descriptors",
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}
