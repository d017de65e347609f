//! The resolved configuration: every knob with its final, validated value,
//! its default, its bounds and what it does against a malicious tenant.
//!
//! Built by [`Config::load`](super::Config::load) (file, environment,
//! flags) or [`Config::default`]; `config/bulkhead.toml` documents the same
//! knobs for operators and a test keeps it equal to these defaults.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use super::auth::{TokenHash, Tokens};
use super::error::{ConfigError, Origin};
use super::{InstanceMode, IsolationLevel};
use crate::builtin::BuiltinPlugin;
use crate::compartment::SessionScope;
use crate::isolation::{AdmissionLimits, IsolationSettings};
use crate::names::Namespace;
use crate::sandbox::{CallLimits, SandboxConfig};
use crate::supervisor::CompileLimits;

/// The whole resolved configuration. Sections mirror the TOML tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `[server]`: the HTTP API.
    pub server: ServerConfig,
    /// `[isolation]`: how requests map to worker processes.
    pub isolation: IsolationConfig,
    /// `[procmgr]`: supervision timing and metrics.
    pub procmgr: ProcmgrConfig,
    /// `[pool]`: pre-started workers.
    pub pool: PoolConfig,
    /// `[limits]`: per-call and per-worker admission limits, for tenants
    /// that do not override them.
    pub limits: Limits,
    /// `[worker]`: OS limits of each worker process.
    pub worker: WorkerLimits,
    /// `[data]`: where state lives on disk.
    pub data: DataConfig,
    /// `[auth]`: the admin token.
    pub auth: AuthConfig,
    /// `[plugins.NAME]`: the built-ins plus configured plugin files, by name.
    pub plugins: BTreeMap<String, PluginConfig>,
    /// `[tenants.NAMESPACE]`: per-tenant overrides, by namespace. A namespace
    /// not listed here runs with the global level and limits and may call any
    /// plugin (and, with auth on, only the admin token can reach it).
    pub tenants: BTreeMap<Namespace, TenantConfig>,
}

impl Default for Config {
    /// The embedded default: what `bulkhead serve` runs with no config file,
    /// and what `config/bulkhead.toml` spells out.
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            isolation: IsolationConfig::default(),
            procmgr: ProcmgrConfig::default(),
            pool: PoolConfig::default(),
            limits: Limits::default(),
            worker: WorkerLimits::default(),
            data: DataConfig::default(),
            auth: AuthConfig::default(),
            plugins: builtin_plugins(),
            tenants: BTreeMap::new(),
        }
    }
}

/// `[server]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address the HTTP API binds: an IP address and a port (host names are
    /// refused, so what is bound is exactly what is written; port 0 picks a
    /// free port). Default `127.0.0.1:8080`. A non-loopback address requires
    /// a token (`auth.admin_token_sha256` or a tenant's `token_sha256`):
    /// without one, anyone who can reach the port could run code as any
    /// tenant, so such a config is refused.
    pub listen: SocketAddr,
    /// Largest request body of `/v1/invoke`, in bytes; a larger one gets 413
    /// `payload_too_large` without being read in full. Default 1 MiB, at most
    /// [`Self::MAX_PAYLOAD_CEILING`]. The payload is copied into the guest's
    /// memory, so it also counts against `limits.memory`. Against a malicious
    /// tenant: bounds the host memory one request can make the host hold
    /// (times the calls in flight and queued).
    pub max_payload: u64,
    /// Largest plugin accepted by `PUT /v1/plugins` and for a configured
    /// plugin file, in bytes. Default 64 MiB, at most
    /// [`Self::MAX_PLUGIN_SIZE_CEILING`]. Compile time and disk use grow with
    /// it. Uploads need the admin token when auth is on.
    pub max_plugin_size: u64,
    /// The backend name of the health report (`Backend: NAME`). Default
    /// `bulkhead`; 1 to [`Self::NAME_MAX_LEN`] characters, none of them a
    /// control character (it is printed into a line-oriented report).
    pub name: String,
    /// How long clients may take, and how many may be connected.
    pub http: HttpLimits,
    /// `[server.tls]`: serve HTTPS with this certificate; `None` serves
    /// plain HTTP (behind a balancer that terminates TLS, or on loopback).
    pub tls: Option<TlsFiles>,
    /// The request header that names the tenant of a call to a wasi:http
    /// app (`/v1/http/...`): default `x-bulkhead-namespace`, as for invoke;
    /// another name fits an app whose clients already send their tenant in
    /// a header of their own. A lowercase HTTP header name.
    pub app_namespace_header: String,
    /// The request header that names the session of a call to an app:
    /// default `x-bulkhead-session`.
    pub app_session_header: String,
}

/// `[server.tls]`: PEM files, checked to parse when the config is loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// `cert`: the certificate chain, leaf first.
    pub cert: PathBuf,
    /// `key`: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The limits of the HTTP server (`[server]` keys): against clients that
/// connect and send nothing, trickle headers or bodies, never read the
/// answer, or open connections by the thousand. Every limit holds whether
/// or not the client has a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// From the first byte of a request to the end of its headers
    /// (`header_read_timeout`, default 10s); then the connection is closed.
    pub header_read_timeout: Duration,
    /// How long a connection may wait for its first or next request
    /// (`idle_timeout`, default 60s); then it is closed.
    pub idle_timeout: Duration,
    /// How long a request body may take to arrive in full
    /// (`body_read_timeout`, default 30s); then the request is answered 400
    /// `invalid_request` and the connection closed.
    pub body_read_timeout: Duration,
    /// How long writing an answer may stall (the client not reading)
    /// before the connection is cut (`write_timeout`, default 30s).
    pub write_timeout: Duration,
    /// On SIGTERM, how long calls in flight may take to finish before every
    /// connection is cut (`shutdown_timeout`, default 10s); the workers'
    /// `isolation.grace_period` follows.
    pub shutdown_timeout: Duration,
    /// Connections open at once (`max_connections`, default 4096); beyond
    /// it a new connection is answered 429 `bulkhead_full` at once and
    /// closed. Lowered at start to what the open-files limit allows beside
    /// the descriptors kept for workers.
    pub max_connections: u32,
    /// Largest request head, request line and headers together
    /// (`max_header_size`, default 16KiB, 8KiB to 1MiB); a larger one is
    /// answered 431.
    pub max_header_size: u64,
}

impl HttpLimits {
    /// The most any of the timeouts may be: an hour.
    pub const TIMEOUT_CEILING: Duration = Duration::from_secs(3600);
    /// 100,000 connections.
    pub const MAX_CONNECTIONS_CEILING: u32 = 100_000;
    /// hyper reads a request head into a buffer of at least 8 KiB.
    pub const MIN_HEADER_SIZE: u64 = 8 << 10;
    /// 1 MiB.
    pub const MAX_HEADER_SIZE_CEILING: u64 = 1 << 20;
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_header_size: 16 << 10,
        }
    }
}

impl ServerConfig {
    /// `127.0.0.1:8080`: loopback, so a fresh install is not reachable from
    /// the network.
    pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
    /// 1 MiB.
    pub const DEFAULT_MAX_PAYLOAD: u64 = 1 << 20;
    /// 16 MiB: the most one message to a worker may carry
    /// (`ipc::MAX_PAYLOAD`), so a payload can never break the worker's
    /// connection. A payload is also held in host memory and copied twice
    /// (to the worker, into the guest); beyond this a request stream is the
    /// wrong tool.
    pub const MAX_PAYLOAD_CEILING: u64 = crate::ipc::MAX_PAYLOAD as u64;
    /// The sandbox's own default (64 MiB).
    pub const DEFAULT_MAX_PLUGIN_SIZE: u64 = SandboxConfig::DEFAULT_MAX_PLUGIN_SIZE as u64;
    /// 1 GiB: the compiled code of a component is several times its size and
    /// is loaded by every worker.
    pub const MAX_PLUGIN_SIZE_CEILING: u64 = 1 << 30;
    /// `bulkhead`.
    pub const DEFAULT_NAME: &str = "bulkhead";
    /// 128 characters: one line of the report.
    pub const NAME_MAX_LEN: usize = 128;
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: Self::DEFAULT_LISTEN,
            max_payload: Self::DEFAULT_MAX_PAYLOAD,
            max_plugin_size: Self::DEFAULT_MAX_PLUGIN_SIZE,
            name: Self::DEFAULT_NAME.to_owned(),
            http: HttpLimits::default(),
            tls: None,
            app_namespace_header: crate::api::NAMESPACE_HEADER.to_owned(),
            app_session_header: crate::api::SESSION_HEADER.to_owned(),
        }
    }
}

/// `[isolation]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsolationConfig {
    /// How requests are grouped into workers: `none` (one shared worker),
    /// `namespace` (one per tenant) or `session` (one per session). Default
    /// `namespace`; a tenant may override it (`tenants.NS.level`). Against a
    /// malicious tenant: at `none` a tenant that crashes, hangs or floods its
    /// worker harms every tenant; `namespace` confines that to the tenant;
    /// `session` also separates a tenant's sessions, at one process per
    /// session id (bounded by `max_processes`).
    pub level: IsolationLevel,
    /// How long a worker being terminated may finish its calls after the
    /// shutdown message before it is killed (SIGKILL). Default 10s; `0s`
    /// kills at once; at most [`Self::GRACE_PERIOD_CEILING`]. Host shutdown
    /// waits up to this long. Against a malicious tenant: a guest that
    /// ignores shutdown keeps its worker at most this long.
    pub grace_period: Duration,
    /// A worker with no call in flight or queued for this long is terminated;
    /// its next call starts a new one (a cold start). Default 5m; `0s`
    /// disables it (idle workers then live until evicted by `max_processes`
    /// or shutdown); at most [`Self::IDLE_TIMEOUT_CEILING`]. Frees the memory
    /// of tenants that went away.
    pub idle_timeout: Duration,
    /// Most tenant workers alive at once (idle `pool` workers are not
    /// counted). Each tenant also holds at most its quota,
    /// `tenants.NS.max_processes` (default a quarter of this, at least 1).
    /// To make room for a tenant's new process, that tenant's own least
    /// recently used idle process is evicted first; only when it has none is
    /// the least recently used idle process of the tenant holding the most
    /// processes taken, if that is more than it holds. If neither exists, the call gets 503
    /// `worker_unavailable`. Default 64, 1 to [`Self::MAX_PROCESSES_CEILING`].
    /// Against a malicious tenant: at level `session` every new session id
    /// would otherwise start a process; the quota bounds what one tenant can
    /// hold, and it can evict only its own processes or those of tenants
    /// holding more than it, never a tenant holding as few as it does.
    pub max_processes: u32,
    /// Addition to `CONTRACT.md`: how long a new worker may take to report
    /// ready (after spawn, or after a pool worker is assigned); past it the
    /// start fails and procmgr retries with backoff. Default 5s, more than 0,
    /// at most [`Self::START_TIMEOUT_CEILING`].
    pub start_timeout: Duration,
    /// Addition to `CONTRACT.md`: how far a session id reaches. `global`
    /// (default, the memo's): session process ids are `session:<session>`,
    /// one space for the host; a session's process belongs to the namespace
    /// that created it and another namespace naming the same id gets
    /// `forbidden`. `namespace`: ids are `session:<namespace>:<session>`, so
    /// tenants' session ids never meet. Against a malicious tenant: with
    /// `global`, a tenant can take another's predictable session ids first
    /// and make them answer `forbidden`; `namespace` ends that.
    pub session_scope: SessionScope,
}

impl IsolationConfig {
    /// procmgr's own default (10 s).
    pub const DEFAULT_GRACE_PERIOD: Duration = crate::procmgr::DEFAULT_GRACE_PERIOD;
    /// 5 minutes: shutdown of the host waits for the longest grace period,
    /// and a service manager kills a host that takes longer than that.
    pub const GRACE_PERIOD_CEILING: Duration = Duration::from_secs(5 * 60);
    /// 5 minutes.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
    /// 30 days: longer is "never" (write `0s`), and keeps `Instant + timeout`
    /// arithmetic far from overflow, which panics.
    pub const IDLE_TIMEOUT_CEILING: Duration = Duration::from_secs(30 * 24 * 3600);
    /// The isolation manager's own default (64 workers).
    pub const DEFAULT_MAX_PROCESSES: u32 = IsolationSettings::DEFAULT_MAX_PROCESSES as u32;
    /// 4096 workers: past this, pids, file descriptors and the pooling
    /// allocator's address-space reservations of one host run out first.
    pub const MAX_PROCESSES_CEILING: u32 = 4096;
    /// The isolation manager's own default (5 s).
    pub const DEFAULT_START_TIMEOUT: Duration = IsolationSettings::DEFAULT_START_TIMEOUT;
    /// 5 minutes.
    pub const START_TIMEOUT_CEILING: Duration = Duration::from_secs(5 * 60);
}

impl Default for IsolationConfig {
    fn default() -> Self {
        Self {
            level: IsolationLevel::default(),
            grace_period: Self::DEFAULT_GRACE_PERIOD,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_processes: Self::DEFAULT_MAX_PROCESSES,
            start_timeout: Self::DEFAULT_START_TIMEOUT,
            session_scope: SessionScope::Global,
        }
    }
}

/// `[procmgr]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcmgrConfig {
    /// Interval between resyncs (health checks) of a healthy worker, jittered
    /// by 10%. Default 30s, at least [`Self::RESYNC_INTERVAL_FLOOR`], at most
    /// [`Self::RESYNC_INTERVAL_CEILING`]. Shorter
    /// finds a wedged worker sooner at one ping per worker per interval; a
    /// worker's exit is noticed at once regardless.
    pub resync_interval: Duration,
    /// Cap of the retry backoff after a worker fails (1s doubling per
    /// consecutive failure, up to this). Default 5s, more than 0, at most
    /// [`Self::BACKOFF_PERIOD_CEILING`]. Calls during the backoff get 503
    /// `worker_unavailable` with `Retry-After`. Against a malicious tenant: a
    /// guest that crashes its worker on every call costs at most one restart
    /// per backoff period.
    pub backoff_period: Duration,
    /// Prefix of the procmgr metric names (`<prefix>_process_restarts_total`,
    /// ...). Default `procmgr`; must match `[a-zA-Z_][a-zA-Z0-9_]*` (a valid
    /// Prometheus name), at most [`Self::METRICS_NAMESPACE_MAX_LEN`] long.
    pub metrics_namespace: String,
    /// How long the series of a purged process stay on `/metrics`, so that
    /// a scrape sees its termination, last errors and restarts. Default 5m,
    /// at most [`Self::SERIES_RETENTION_CEILING`]; `0s` removes them at the
    /// purge. At most [`crate::procmgr::MAX_RETAINED`] purged processes are
    /// retained at once (oldest dropped first), so churn cannot grow
    /// `/metrics` without bound.
    pub series_retention: Duration,
}

impl ProcmgrConfig {
    /// 5 minutes: twenty scrapes at the usual 15 s.
    pub const DEFAULT_SERIES_RETENTION: Duration = Duration::from_secs(300);
    /// A day.
    pub const SERIES_RETENTION_CEILING: Duration = Duration::from_secs(24 * 3600);
    /// procmgr's own default (30 s).
    pub const DEFAULT_RESYNC_INTERVAL: Duration = crate::procmgr::DEFAULT_RESYNC_INTERVAL;
    /// 100 ms: shorter turns health checking into a busy loop.
    pub const RESYNC_INTERVAL_FLOOR: Duration = Duration::from_millis(100);
    /// 30 days: keeps `Instant + interval` arithmetic far from overflow.
    pub const RESYNC_INTERVAL_CEILING: Duration = Duration::from_secs(30 * 24 * 3600);
    /// procmgr's own default (5 s).
    pub const DEFAULT_BACKOFF_PERIOD: Duration = crate::procmgr::DEFAULT_BACKOFF_PERIOD;
    /// 1 hour: a tenant waits at most this long after its worker recovers.
    pub const BACKOFF_PERIOD_CEILING: Duration = Duration::from_secs(3600);
    /// `procmgr`, the memo's metric names (procmgr's own default).
    pub const DEFAULT_METRICS_NAMESPACE: &str = crate::procmgr::DEFAULT_NAMESPACE;
    /// 64 characters.
    pub const METRICS_NAMESPACE_MAX_LEN: usize = 64;
}

impl Default for ProcmgrConfig {
    fn default() -> Self {
        Self {
            resync_interval: Self::DEFAULT_RESYNC_INTERVAL,
            backoff_period: Self::DEFAULT_BACKOFF_PERIOD,
            metrics_namespace: Self::DEFAULT_METRICS_NAMESPACE.to_owned(),
            series_retention: Self::DEFAULT_SERIES_RETENTION,
        }
    }
}

/// `[pool]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Idle, tenant-agnostic workers kept started (engine up, plugins
    /// loaded); a new process adopts one, so its cold start is an IPC round
    /// trip instead of a spawn. Refilled in the background. Default 2; `0`
    /// turns the pool off; at most `isolation.max_processes`. Each costs
    /// about 13 MB resident (`bulkhead bench memory`).
    pub warm: u32,
    /// Addition to `CONTRACT.md`: `prewarm`, tenants whose process is
    /// created at start, re-created after a crash, never reaped as idle nor
    /// evicted, so that their first call is warm. `pool.prewarm` and every
    /// tenant with `prewarm = true`. A tenant's process is the one its calls
    /// without a session go to: `ns:NS` at level `namespace`, the shared
    /// one at level `none`; a tenant at level `session` has no such process
    /// and may not be listed. At most `isolation.max_processes` processes.
    pub prewarm: BTreeSet<Namespace>,
}

impl PoolConfig {
    /// 2: enough to absorb two new keys arriving together.
    pub const DEFAULT_WARM: u32 = 2;
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            warm: Self::DEFAULT_WARM,
            prewarm: BTreeSet::new(),
        }
    }
}

/// `[limits]` and `[tenants.NS.limits]`: what one call and one worker's
/// admission may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Fuel one call may consume (about one unit per wasm instruction);
    /// `None` (written `0`) is unlimited. Default 1 000 000 000 (about a
    /// second of straight-line code). Against a malicious tenant: stops a
    /// spinning guest deterministically, with `fuel_exhausted`; with fuel
    /// unlimited only `timeout` stops it.
    pub fuel: Option<u64>,
    /// Bytes one instance may hold in all its linear memories and tables
    /// together. Default 64 MiB; at least [`Self::MEMORY_FLOOR`], at most
    /// [`Self::MEMORY_CEILING`] and at most `worker.memory_max`. Against a
    /// malicious tenant: growth past it fails (`memory_limit`). Calls in
    /// flight at once each have this much, so `max_concurrent * memory` may
    /// exceed `worker.memory_max`: then the kernel kills the worker, which
    /// only its own tenant (at `namespace`/`session`) notices.
    pub memory: u64,
    /// Wall-clock deadline of one call, from its admission. Default 5s; at
    /// least [`Self::TIMEOUT_FLOOR`], at most [`Self::TIMEOUT_CEILING`].
    /// Against a malicious tenant: stops a guest that blocks or sleeps
    /// (`timeout`), which fuel cannot see.
    pub timeout: Duration,
    /// Calls one worker runs at once. Default 16, 1 to
    /// [`Self::MAX_CONCURRENT_CEILING`]. Each needs an instance slot in the
    /// worker. At level `none` every tenant shares these.
    pub max_concurrent: u32,
    /// Calls that may wait for a worker's concurrency; more get 429
    /// `bulkhead_full`. Default 64, 1 to [`Self::MAX_QUEUED_CEILING`]. Against
    /// a malicious tenant: a flood fills only its own worker's queue at level
    /// `namespace`/`session`, but everyone's at `none`.
    pub max_queued: u32,
    /// Longest a call waits in the queue before it gets 429 `bulkhead_full`.
    /// Default 1s, more than 0, at most [`Self::QUEUE_TIMEOUT_CEILING`]. The
    /// wait does not count against `timeout`.
    pub queue_timeout: Duration,
    /// Addition to `CONTRACT.md`: `cpu_weight`, the CPU share of each of the
    /// tenant's workers against the others under contention (cgroup
    /// `cpu.weight`; v1 `cpu.shares` scaled). 1 to 10000, default 100.
    pub cpu_weight: u32,
    /// Addition to `CONTRACT.md`: `cpu_max`, the most CPU each of the
    /// tenant's workers may use, in CPUs (`0.5` is half a core; cgroup CFS
    /// quota), written `0` for no cap (the default); `Some` thousandths of a
    /// CPU here. Against a malicious tenant: a spinning worker cannot take
    /// more than this from its neighbours, whatever fuel allows.
    pub cpu_max_millicores: Option<u32>,
    /// Addition to `CONTRACT.md`: `disk`, the size of the namespace's own
    /// filesystem for `/data` (its quota), written `0` for none (the
    /// default); at least [`Self::DISK_FLOOR`]. Against a malicious tenant:
    /// a full `/data` fails the tenant's own writes (no space) while the
    /// host and other tenants keep writing and deploying.
    pub disk: Option<u64>,
    /// Addition to `CONTRACT.md`: `disk_files`, the files (inodes) of that
    /// filesystem. Default 65536, [`Self::DISK_FILES_FLOOR`] to 2^32 - 1.
    pub disk_files: u64,
}

impl Limits {
    /// The sandbox's own default (1 billion units).
    pub const DEFAULT_FUEL: u64 = CallLimits::DEFAULT_FUEL;
    /// The sandbox's own default (64 MiB).
    pub const DEFAULT_MEMORY: u64 = CallLimits::DEFAULT_MEMORY;
    /// 64 KiB: one wasm page; less and no guest with a memory can run.
    pub const MEMORY_FLOOR: u64 = 64 << 10;
    /// 4 GiB: the most a 32-bit wasm memory can address.
    pub const MEMORY_CEILING: u64 = 4 << 30;
    /// The sandbox's own default (5 s).
    pub const DEFAULT_TIMEOUT: Duration = CallLimits::DEFAULT_TIMEOUT;
    /// 1 ms: the deadline is enforced by an epoch ticker at a tenth of it.
    pub const TIMEOUT_FLOOR: Duration = Duration::from_millis(1);
    /// 1 hour: a call longer than this is a job, not a request.
    pub const TIMEOUT_CEILING: Duration = Duration::from_secs(3600);
    /// The bulkhead's own default (16 calls).
    pub const DEFAULT_MAX_CONCURRENT: u32 = AdmissionLimits::DEFAULT_MAX_CONCURRENT as u32;
    /// 1000 calls: each needs an instance slot, and 1000 slots of the pooling
    /// allocator already reserve terabytes of address space.
    pub const MAX_CONCURRENT_CEILING: u32 = 1000;
    /// The bulkhead's own default (64 calls).
    pub const DEFAULT_MAX_QUEUED: u32 = AdmissionLimits::DEFAULT_MAX_QUEUED as u32;
    /// 100 000 calls: each queued call holds its payload in host memory.
    pub const MAX_QUEUED_CEILING: u32 = 100_000;
    /// The bulkhead's own default (1 s).
    pub const DEFAULT_QUEUE_TIMEOUT: Duration = AdmissionLimits::DEFAULT_QUEUE_TIMEOUT;
    /// 5 minutes.
    pub const QUEUE_TIMEOUT_CEILING: Duration = Duration::from_secs(5 * 60);
    /// The cgroup v2 default weight.
    pub const DEFAULT_CPU_WEIGHT: u32 = crate::ipc::CpuLimits::DEFAULT_WEIGHT;
    /// The cgroup v2 maximum weight.
    pub const CPU_WEIGHT_CEILING: u32 = 10_000;
    /// One hundredth of a CPU: the smallest cap (1 ms per 100 ms period).
    pub const CPU_MAX_FLOOR: f64 = 0.01;
    /// 1024 CPUs.
    pub const CPU_MAX_CEILING: f64 = 1024.0;
    /// 4 MiB: the smallest ext4 filesystem worth having.
    pub const DISK_FLOOR: u64 = 4 << 20;
    /// 65536 files.
    pub const DEFAULT_DISK_FILES: u64 = 65_536;
    /// 16 files: the filesystem's own take a few.
    pub const DISK_FILES_FLOOR: u64 = 16;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: Some(Self::DEFAULT_FUEL),
            memory: Self::DEFAULT_MEMORY,
            timeout: Self::DEFAULT_TIMEOUT,
            max_concurrent: Self::DEFAULT_MAX_CONCURRENT,
            max_queued: Self::DEFAULT_MAX_QUEUED,
            queue_timeout: Self::DEFAULT_QUEUE_TIMEOUT,
            cpu_weight: Self::DEFAULT_CPU_WEIGHT,
            cpu_max_millicores: None,
            disk: None,
            disk_files: Self::DEFAULT_DISK_FILES,
        }
    }
}

/// `[worker]`: OS limits of each worker process, enforced by cgroups and
/// rlimits where the machine allows (else logged once and skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerLimits {
    /// Memory of one worker process (cgroup `memory.max`), in bytes. Default
    /// 512 MiB, at least [`Self::MEMORY_MAX_FLOOR`], and at least
    /// `limits.memory`. Against a malicious tenant: a worker past it is
    /// killed by the kernel (`worker_crashed`), the host and other workers
    /// carry on.
    pub memory_max: u64,
    /// Processes and threads of one worker (cgroup `pids.max`). Default 64,
    /// at least [`Self::PIDS_MAX_FLOOR`]. Against a malicious tenant: stops
    /// a fork or thread bomb should a guest ever escape the sandbox.
    pub pids_max: u32,
    /// Open file descriptors of one worker (`RLIMIT_NOFILE`). Default 256,
    /// [`Self::OPEN_FILES_FLOOR`] to [`Self::OPEN_FILES_CEILING`]. Guests'
    /// `/data` files count here.
    pub open_files: u32,
    /// Addition to `CONTRACT.md`: memory of the child process that
    /// validates and compiles one upload (its address space, and its cgroup
    /// memory limit where the host can make one). Default 4 GiB, at least
    /// [`Self::COMPILE_MEMORY_MAX_FLOOR`]. Against a malicious tenant (a
    /// compile bomb within `server.max_plugin_size`): the upload is refused
    /// with `invalid_plugin` when its compile needs more, and the host's own
    /// memory is never touched. Raise it for very large components.
    pub compile_memory_max: u64,
    /// Addition to `CONTRACT.md`: how long compiling one upload may take
    /// (wall clock, and CPU time). Default 2m, [`Self::COMPILE_TIMEOUT_FLOOR`]
    /// to [`Self::COMPILE_TIMEOUT_CEILING`]. Compiles run one at a time, on
    /// one core, at the lowest priority, so calls in flight come first.
    /// Against a malicious tenant: a compile bomb is stopped here with
    /// `invalid_plugin`.
    pub compile_timeout: Duration,
    /// Addition to `CONTRACT.md`: `sandbox`, the OS sandbox around every
    /// worker (`strict`, `best-effort` or `off`; default `best-effort`), see
    /// `worker::jail`. Against an escaped guest: namespaces, an
    /// unprivileged uid, Landlock and a seccomp allow-list stand between it
    /// and the host, other tenants and the machine.
    pub sandbox: crate::worker::SandboxMode,
    /// Addition to `CONTRACT.md`: `uid` and `gid` workers run as when the
    /// host runs as root. Default 65534 (`nobody`/`nogroup`), never 0.
    pub uid: u32,
    pub gid: u32,
    /// Addition to `CONTRACT.md`: `max_file_size`, the largest file a
    /// worker may write (`RLIMIT_FSIZE`). Default 1 GiB, at least 1 MiB.
    /// Against a malicious tenant: a larger write fails inside the guest.
    pub max_file_size: u64,
}

impl WorkerLimits {
    /// 512 MiB.
    pub const DEFAULT_MEMORY_MAX: u64 = 512 << 20;
    /// 32 MiB: an idle worker is already about 13 MB resident.
    pub const MEMORY_MAX_FLOOR: u64 = 32 << 20;
    /// 64.
    pub const DEFAULT_PIDS_MAX: u32 = 64;
    /// 8: the worker's runtime, epoch ticker and spawner threads.
    pub const PIDS_MAX_FLOOR: u32 = 8;
    /// The worker's own default (256).
    pub const DEFAULT_OPEN_FILES: u32 = crate::worker::DEFAULT_OPEN_FILES as u32;
    /// 16: stdio, the IPC socket and the data directory.
    pub const OPEN_FILES_FLOOR: u32 = 16;
    /// 1048576: Linux's default `fs.nr_open`, above which the rlimit cannot be set.
    pub const OPEN_FILES_CEILING: u32 = 1 << 20;
    /// The compiler's own default (4 GiB).
    pub const DEFAULT_COMPILE_MEMORY_MAX: u64 = CompileLimits::DEFAULT_MEMORY_MAX;
    /// 256 MiB: the compiler process itself, before any plugin.
    pub const COMPILE_MEMORY_MAX_FLOOR: u64 = 256 << 20;
    /// The compiler's own default (2 minutes).
    pub const DEFAULT_COMPILE_TIMEOUT: Duration = CompileLimits::DEFAULT_TIMEOUT;
    /// 1 s: the CPU-time limit is whole seconds.
    pub const COMPILE_TIMEOUT_FLOOR: Duration = Duration::from_secs(1);
    /// 1 hour.
    pub const COMPILE_TIMEOUT_CEILING: Duration = Duration::from_secs(3600);
    /// 65534, `nobody` on Debian and most distributions.
    pub const DEFAULT_UID: u32 = 65534;
    /// 65534, `nogroup` on Debian.
    pub const DEFAULT_GID: u32 = 65534;
    /// 1 GiB.
    pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 30;
    /// 1 MiB.
    pub const MAX_FILE_SIZE_FLOOR: u64 = 1 << 20;
}

impl Default for WorkerLimits {
    fn default() -> Self {
        Self {
            memory_max: Self::DEFAULT_MEMORY_MAX,
            pids_max: Self::DEFAULT_PIDS_MAX,
            open_files: Self::DEFAULT_OPEN_FILES,
            compile_memory_max: Self::DEFAULT_COMPILE_MEMORY_MAX,
            compile_timeout: Self::DEFAULT_COMPILE_TIMEOUT,
            sandbox: crate::worker::SandboxMode::default(),
            uid: Self::DEFAULT_UID,
            gid: Self::DEFAULT_GID,
            max_file_size: Self::DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// `[data]`. Relative paths are relative to the working directory of the
/// host (unlike plugin paths, which are relative to the config file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataConfig {
    /// Root of the tenants' data: namespace `NS` gets `<dir>/NS`, preopened
    /// to its guests as `/data`. Default `./bulkhead-data`. Against a
    /// malicious tenant: a namespace is a single path component that never
    /// starts with `.`, so no tenant reaches outside its own directory or
    /// into the `.`-named directories below.
    pub dir: PathBuf,
    /// Compiled plugins (native code workers map and run). Default
    /// `<dir>/.cache`. If inside `dir`, its first component there must start
    /// with `.`: a directory a tenant could be given as `/data` must never
    /// hold code that other tenants' workers run.
    pub cache_dir: PathBuf,
    /// Deployed plugins (`PUT /v1/plugins`), kept across restarts. Default
    /// `<dir>/.plugins`; the same rule as `cache_dir`.
    pub plugins_dir: PathBuf,
}

impl DataConfig {
    /// `./bulkhead-data`.
    pub const DEFAULT_DIR: &str = "./bulkhead-data";
    /// Name of the default `cache_dir` inside `dir`.
    pub const CACHE_SUBDIR: &str = ".cache";
    /// Name of the default `plugins_dir` inside `dir`.
    pub const PLUGINS_SUBDIR: &str = ".plugins";

    /// The defaults for a data root at `dir`.
    pub fn under(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Self {
            cache_dir: dir.join(Self::CACHE_SUBDIR),
            plugins_dir: dir.join(Self::PLUGINS_SUBDIR),
            dir,
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        Self::under(Self::DEFAULT_DIR)
    }
}

/// `[auth]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// Digest of the admin token, which may call every endpoint in every
    /// namespace. Default: none. When any token (this or a tenant's) is
    /// configured, every `/v1` call needs `Authorization: Bearer TOKEN`.
    pub admin_token_sha256: Option<TokenHash>,
    /// Digest of a token that may only read `/metrics` (for a Prometheus
    /// scraper), beside the admin token, which may too. Default: none. It
    /// does not by itself turn auth on: with no admin or tenant token,
    /// `/metrics` stays open to loopback clients like every endpoint.
    pub metrics_token_sha256: Option<TokenHash>,
}

/// Where a plugin's component comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginSource {
    /// Embedded in the binary (`echo`, `counter`).
    Builtin(BuiltinPlugin),
    /// A `.wasm` component file; checked to exist when the config is loaded.
    File(PathBuf),
}

/// `[plugins.NAME]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginConfig {
    /// `path`: the component file, made absolute when loaded. Relative to the
    /// config file's directory when set in the file; to the working directory
    /// when set by an environment variable. May be omitted only for a
    /// built-in name, to change its `instance`.
    pub source: PluginSource,
    /// `instance`: `per-request` (default) or `per-process`.
    pub instance: InstanceMode,
}

/// The built-in plugins ([`crate::builtin::ALL`]), as configured when
/// nothing overrides them.
pub(crate) fn builtin_plugins() -> BTreeMap<String, PluginConfig> {
    crate::builtin::ALL
        .iter()
        .map(|&builtin| {
            let plugin = PluginConfig {
                source: PluginSource::Builtin(builtin),
                instance: builtin.mode,
            };
            (builtin.name.to_owned(), plugin)
        })
        .collect()
}

/// `[tenants.NAMESPACE]`, with the tenant's effective values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantConfig {
    /// The tenant's isolation level: its `level`, else `isolation.level`.
    pub level: IsolationLevel,
    /// Addition to `CONTRACT.md`: `max_processes`, the most processes the
    /// tenant may hold at once (its quota, see `isolation.max_processes`);
    /// `None` is a quarter of `isolation.max_processes` (at least 1). 1 to
    /// `isolation.max_processes`.
    pub max_processes: Option<u32>,
    /// `plugins`: the only plugins the tenant may call; `None` means all.
    /// Each name must be a configured or built-in plugin.
    pub plugins: Option<BTreeSet<String>>,
    /// `token_sha256`: digest of the tenant's token, valid only for this
    /// namespace and for no admin endpoint. No two callers share one.
    pub token_sha256: Option<TokenHash>,
    /// `[limits]` with the tenant's `[tenants.NS.limits]` keys laid over it.
    pub limits: Limits,
    /// Addition to `CONTRACT.md`: `http_allow`, the only destinations the
    /// tenant's components may send HTTP requests to (`wasi:http`), each
    /// `host:port` (lowercase; an IP address or a name; plain `http` only).
    /// Empty (the default): every outgoing request is denied, and the guest
    /// sees `HTTP-request-denied`. The host makes the request, never the
    /// worker, which has no network.
    pub http_allow: BTreeSet<String>,
}

impl Config {
    /// Whether any token is configured, so every `/v1` call needs one.
    pub fn auth_enabled(&self) -> bool {
        self.auth.admin_token_sha256.is_some() || self.tenants.values().any(|t| t.token_sha256.is_some())
    }

    /// The token lookup table: the admin digest and every tenant's.
    pub fn tokens(&self) -> Tokens {
        let tenants = self
            .tenants
            .iter()
            .filter_map(|(ns, t)| Some((t.token_sha256?, ns.to_string())))
            .collect();
        Tokens::new(self.auth.admin_token_sha256, tenants).with_metrics(self.auth.metrics_token_sha256)
    }

    /// Refuses to serve on a non-loopback address when no token is
    /// configured. [`Config::load`] already applies it; call it again after
    /// changing `server.listen` or the tokens in code.
    pub fn check_exposure(&self) -> Result<(), ConfigError> {
        self.check_exposure_from(Origin::Default)
    }

    pub(crate) fn check_exposure_from(&self, origin: Origin) -> Result<(), ConfigError> {
        let listen = self.server.listen;
        if is_loopback(listen.ip()) || self.auth_enabled() {
            return Ok(());
        }
        let message = format!(
            "{listen} is not a loopback address and no token is configured, so anyone who can reach it could \
             run code as any tenant: set auth.admin_token_sha256 (printf %s TOKEN | sha256sum) or a tenant's \
             token_sha256, or listen on 127.0.0.1"
        );
        Err(ConfigError::invalid(&["server", "listen"], origin, message))
    }
}

/// `127.0.0.0/8`, `::1`, and `::ffff:127.x.y.z`.
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}
