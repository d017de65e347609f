//! The one wasmtime [`Engine`] of a sandbox and the epoch ticker that gives
//! calls their wall-clock deadlines.
//!
//! What the engine lets instances share, and what it turns off, matters most
//! at level `none`, where the tenants' instances take turns in one pooling
//! allocator:
//! - Every slot is reset when an instance is dropped:
//!   `linear_memory_keep_resident` and `table_keep_resident` are 0, so a
//!   slot's memory and tables are decommitted (the next instance sees zero
//!   pages, never the previous tenant's), and async stacks are zeroed on
//!   reuse (`async_stack_zeroing`), so no host or guest data of an earlier
//!   call lingers on the stack a later one runs on.
//! - Only the wasm features a component of the `bulkhead:plugin` world built
//!   by the usual toolchains needs are on (MVP, bulk memory, multi-value,
//!   reference types, SIMD, extended constants, and the component model).
//!   Threads (shared memory), memory64, custom page sizes, multiple memories
//!   per core module, GC and typed function references, exceptions, stack
//!   switching, tail calls, wide arithmetic, relaxed SIMD (whose results may
//!   differ between machines) and the component model's async, threading and
//!   other in-progress extensions are off: each is attack surface no plugin
//!   needs, and a component that uses one is refused at upload
//!   (`invalid_plugin`).

use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::SandboxConfig;

/// How an engine is used: to run instances, or only to compile them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A worker's (or a test's) engine: the pooling allocator sized from the
    /// config, the compiler on every core.
    Run,
    /// A compile child's: one compiler thread and no pool (so the address
    /// space the child may use can be bounded). The artifacts are the same:
    /// neither changes what is compiled (see the compatibility test).
    Compile,
}

/// Builds the engine: fuel metering, epoch interruption and, to run, the
/// pooling allocator sized from `config`.
pub(crate) fn build_engine(config: &SandboxConfig, purpose: Purpose) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    let slots = config.instance_slots.max(1);
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(MAX_CORE_INSTANCES_PER_COMPONENT))
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .total_memories(slots.saturating_mul(MAX_MEMORIES_PER_COMPONENT))
        .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
        .total_tables(slots.saturating_mul(MAX_TABLES_PER_COMPONENT))
        .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
        .max_memory_size(usize::try_from(config.max_memory).unwrap_or(usize::MAX))
        .total_stacks(slots);

    pool.linear_memory_keep_resident(0).table_keep_resident(0);

    let mut wasm = Config::new();
    wasm.consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(config.max_wasm_stack)
        .async_stack_zeroing(true)
        .parallel_compilation(purpose == Purpose::Run);
    if purpose == Purpose::Run {
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    // Threads, GC (typed function references, exceptions) and the component
    // model's async are not compiled into this wasmtime at all (its `threads`,
    // `gc` and `component-model-async` features are off).
    wasm.wasm_shared_everything_threads(false)
        .wasm_memory64(false)
        .wasm_custom_page_sizes(false)
        .wasm_multi_memory(false)
        .wasm_gc(false)
        .wasm_stack_switching(false)
        .wasm_tail_call(false)
        .wasm_wide_arithmetic(false)
        .wasm_relaxed_simd(false)
        .wasm_branch_hinting(false)
        .wasm_component_model_error_context(false)
        .wasm_component_model_gc(false)
        .wasm_component_model_map(false)
        .wasm_component_model_memory64(false)
        .wasm_component_model_fixed_length_lists(false)
        .wasm_component_model_implements(false);
    Engine::new(&wasm)
}

/// Core instances one component may create: a Rust component has a handful
/// (its module, shims and fix-ups); toolchains for interpreted languages use
/// more.
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 50;
/// Linear memories one component may have.
const MAX_MEMORIES_PER_COMPONENT: u32 = 4;
/// Tables one component may have.
const MAX_TABLES_PER_COMPONENT: u32 = 8;

/// Increments the engine's epoch every `tick` on its own OS thread, so a
/// guest that never calls the host still reaches its deadline, however busy
/// the async runtime is. Stopped and joined on drop.
#[derive(Debug)]
pub(crate) struct EpochTicker {
    /// Work to run on the ticker's own thread (see [`EpochTicker::run`]);
    /// dropping it stops the thread.
    jobs: Option<std::sync::Mutex<std::sync::mpsc::Sender<Job>>>,
    thread: Option<JoinHandle<()>>,
}

/// Something to do on the ticker's thread.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

impl EpochTicker {
    pub(crate) fn start(engine: &Engine, tick: Duration) -> std::io::Result<Self> {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new().name("bulkhead-epoch".into()).spawn({
            let engine = engine.weak();
            move || {
                let mut next = std::time::Instant::now() + tick;
                loop {
                    match rx.recv_timeout(next.saturating_duration_since(std::time::Instant::now())) {
                        Ok(job) => job(),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                            next += tick;
                            match engine.upgrade() {
                                Some(engine) => engine.increment_epoch(),
                                None => return,
                            }
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            }
        })?;
        Ok(Self {
            jobs: Some(std::sync::Mutex::new(jobs)),
            thread: Some(thread),
        })
    }

    /// Runs `job` on the ticker's thread (between two ticks). The worker's
    /// sandbox uses it to put that thread under a namespace's Landlock
    /// layer too: Landlock restricts one thread at a time.
    pub(crate) fn run(&self, job: Job) -> Result<(), String> {
        let jobs = self.jobs.as_ref().ok_or("the ticker is stopping")?;
        jobs.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(job)
            .map_err(|_| "the ticker thread is gone".to_owned())
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        // Disconnecting the channel stops the thread at once.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            // The thread only sleeps, increments and runs the jobs given it.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{Hash, Hasher};

    use super::*;

    fn compatibility(engine: &Engine) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hasher.finish()
    }

    #[test]
    fn a_compile_engine_makes_artifacts_a_worker_engine_loads() {
        let config = SandboxConfig::new("/nonexistent/cache", "/nonexistent/data");
        let run = build_engine(&config, Purpose::Run).unwrap();
        let compile = build_engine(&config, Purpose::Compile).unwrap();
        assert_eq!(compatibility(&run), compatibility(&compile));
        let artifact = compile
            .precompile_component(crate::builtin::ECHO.wasm)
            .expect("echo compiles");
        // SAFETY: the bytes were just produced by `precompile_component` of a
        // compatible engine, and stay unchanged (owned here).
        unsafe { wasmtime::component::Component::deserialize(&run, &artifact) }.expect("the worker engine loads it");
    }
}
