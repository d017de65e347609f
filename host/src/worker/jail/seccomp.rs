//! The last layer: a seccomp allow-list of the system calls a worker makes
//! (measured with `strace -f` over the test suite's workers, then each
//! entry kept only when the runtime, wasmtime, tokio or WASI needs it), on
//! every thread (`SECCOMP_FILTER_FLAG_TSYNC`), killing the whole process on
//! any other call. So an escaped guest cannot exec, fork, create a socket,
//! `ptrace`, signal another process, mount, unshare, change its uid, load a
//! BPF program, or use io_uring, whatever the other layers allow.
//!
//! Some calls are allowed only with certain arguments: `clone` only for a
//! thread (never a new process), `tgkill` only towards itself (`abort`),
//! `prlimit64` only on itself, `prctl` only to name a thread or a mapping,
//! `ioctl` only for descriptor flags, `fcntl` never to choose a signal's
//! target (`F_SETOWN`, `F_SETSIG`, `O_ASYNC`), `socketpair` only for UNIX sockets
//! (tokio's signal driver). `clone3` returns `ENOSYS` (its flags are behind
//! a pointer that seccomp cannot read), so the C library falls back to
//! `clone`.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

use super::Outcome;

/// Calls allowed whatever their arguments.
const ALWAYS: &[i64] = &[
    // Files and directories (Landlock decides which).
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_preadv2,
    libc::SYS_pwritev2,
    libc::SYS_lseek,
    libc::SYS_close,
    libc::SYS_close_range,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_newfstatat,
    libc::SYS_fstat,
    libc::SYS_statx,
    libc::SYS_fstatfs,
    libc::SYS_getdents64,
    libc::SYS_mkdirat,
    libc::SYS_unlinkat,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_linkat,
    libc::SYS_symlinkat,
    libc::SYS_readlinkat,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_ftruncate,
    libc::SYS_fallocate,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_utimensat,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    libc::SYS_flock,
    libc::SYS_getcwd,
    libc::SYS_dup,
    libc::SYS_dup3,
    // Memory: the allocator, wasmtime's code and linear memories.
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_mremap,
    libc::SYS_brk,
    libc::SYS_msync,
    libc::SYS_mincore,
    libc::SYS_membarrier,
    libc::SYS_memfd_create,
    // Signals: wasmtime's trap handlers.
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    // Threads, time, identity of itself.
    libc::SYS_futex,
    libc::SYS_set_robust_list,
    libc::SYS_get_robust_list,
    libc::SYS_rseq,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_gettimeofday,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_getppid,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_getrandom,
    libc::SYS_uname,
    libc::SYS_sysinfo,
    libc::SYS_getrusage,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_restart_syscall,
    // The event loop and the IPC socket it inherited.
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    libc::SYS_ppoll,
    libc::SYS_pselect6,
    libc::SYS_eventfd2,
    libc::SYS_recvfrom,
    libc::SYS_recvmsg,
    libc::SYS_sendto,
    libc::SYS_sendmsg,
    libc::SYS_shutdown,
    libc::SYS_getsockopt,
    libc::SYS_getsockname,
    // The assignment's Landlock layer (it can only restrict further).
    libc::SYS_landlock_create_ruleset,
    libc::SYS_landlock_add_rule,
    libc::SYS_landlock_restrict_self,
    // Its flags cannot be checked; answered ENOSYS by the first filter.
    libc::SYS_clone3,
];

/// The older forms of the calls above that only x86_64 has.
#[cfg(target_arch = "x86_64")]
const LEGACY: &[i64] = &[
    libc::SYS_open,
    libc::SYS_stat,
    libc::SYS_lstat,
    libc::SYS_poll,
    libc::SYS_access,
    libc::SYS_mkdir,
    libc::SYS_rmdir,
    libc::SYS_unlink,
    libc::SYS_rename,
    libc::SYS_readlink,
    libc::SYS_symlink,
    libc::SYS_link,
    libc::SYS_epoll_wait,
    libc::SYS_dup2,
    libc::SYS_getrlimit,
];
#[cfg(not(target_arch = "x86_64"))]
const LEGACY: &[i64] = &[];

/// Argument `arg` equals `value`, compared on its low 32 bits: the `int`
/// arguments (an option, a pid, a domain) arrive in 64-bit registers whose
/// upper half the C calling convention leaves undefined.
fn eq(arg: u8, value: u64) -> Result<SeccompCondition, seccompiler::BackendError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value)
}

/// One rule per allowed value of argument `arg`.
fn any_of(arg: u8, values: &[u64]) -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    values.iter().map(|&v| SeccompRule::new(vec![eq(arg, v)?])).collect()
}

/// The filter that answers `clone3` with `ENOSYS`, and the allow-list
/// (kill the process on a mismatch), in the order they are installed: the
/// allow-list last, since installing a filter calls `prctl`, which it
/// allows only for naming.
fn filters(pid: u32) -> Result<[BpfProgram; 2], seccompiler::BackendError> {
    let arch: TargetArch = std::env::consts::ARCH
        .try_into()
        .map_err(|_| seccompiler::BackendError::InvalidTargetArch(std::env::consts::ARCH.into()))?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = ALWAYS.iter().chain(LEGACY).map(|&n| (n, Vec::new())).collect();
    let thread = libc::CLONE_THREAD as u64;
    rules.insert(
        libc::SYS_clone,
        vec![SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(thread),
            thread,
        )?])?],
    );
    rules.insert(libc::SYS_tgkill, vec![SeccompRule::new(vec![eq(0, u64::from(pid))?])?]);
    rules.insert(libc::SYS_prlimit64, any_of(0, &[0, u64::from(pid)])?);
    const PR_SET_VMA: u64 = 0x5356_4d41;
    rules.insert(
        libc::SYS_prctl,
        any_of(0, &[libc::PR_SET_NAME as u64, libc::PR_GET_NAME as u64, PR_SET_VMA])?,
    );
    rules.insert(
        libc::SYS_ioctl,
        any_of(
            1,
            &[
                // `unsigned long` requests, all below 2^32.
                libc::FIONBIO,
                libc::FIOCLEX,
                libc::FIONCLEX,
                libc::FIONREAD,
                libc::TCGETS,
            ],
        )?,
    );
    rules.insert(libc::SYS_socketpair, any_of(0, &[libc::AF_UNIX as u64])?);
    // Descriptor flags, duplicates, locks, seals: not F_SETOWN/F_SETSIG, and
    // F_SETFL without O_ASYNC, which together would make the kernel signal
    // a process of the guest's choosing.
    let mut fcntl = any_of(
        1,
        &[
            libc::F_DUPFD,
            libc::F_DUPFD_CLOEXEC,
            libc::F_GETFD,
            libc::F_SETFD,
            libc::F_GETFL,
            libc::F_GETLK,
            libc::F_SETLK,
            libc::F_SETLKW,
            libc::F_OFD_GETLK,
            libc::F_OFD_SETLK,
            libc::F_OFD_SETLKW,
            libc::F_GET_SEALS,
            libc::F_GETPIPE_SZ,
        ]
        .map(|c| c as u64),
    )?;
    fcntl.push(SeccompRule::new(vec![
        eq(1, libc::F_SETFL as u64)?,
        SeccompCondition::new(
            2,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(libc::O_ASYNC as u64),
            0,
        )?,
    ])?);
    rules.insert(libc::SYS_fcntl, fcntl);
    let allow_list: BpfProgram =
        SeccompFilter::new(rules, SeccompAction::KillProcess, SeccompAction::Allow, arch)?.try_into()?;
    let clone3 = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
    let no_clone3: BpfProgram = SeccompFilter::new(
        clone3,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?
    .try_into()?;
    Ok([no_clone3, allow_list])
}

pub(super) fn install() -> Outcome {
    let programs = match filters(std::process::id()) {
        Ok(programs) => programs,
        Err(e) => return Outcome::Broken(format!("compiling the filter: {e}")),
    };
    for program in &programs {
        if let Err(e) = seccompiler::apply_filter_all_threads(program) {
            return Outcome::Unavailable(format!("installing the filter: {e}"));
        }
    }
    Outcome::On(format!(
        "{} system calls allowed, any other kills the process",
        ALWAYS.len() + LEGACY.len() + 7
    ))
}
