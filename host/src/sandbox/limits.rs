//! Per-call limits and the resource limiter that enforces the memory limit.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// The limits one call runs under.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallLimits {
    /// Fuel the call may consume (roughly one unit per wasm instruction).
    /// `None` is unlimited: only the timeout can then stop a spinning guest.
    pub fuel: Option<u64>,
    /// Bytes the instance may hold in all its linear memories and tables
    /// together. A hostile guest that grows past it sees the growth fail; if
    /// it then traps, the call ends with `memory_limit`.
    pub memory: u64,
    /// Wall-clock deadline of the call, measured from when it is accepted
    /// (waiting for a `per-process` instance counts too).
    pub timeout: Duration,
}

impl CallLimits {
    /// 1 billion units: about a second of straight-line guest code.
    pub const DEFAULT_FUEL: u64 = 1_000_000_000;
    /// 64 MiB.
    pub const DEFAULT_MEMORY: u64 = 64 << 20;
    /// 5 seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            fuel: Some(Self::DEFAULT_FUEL),
            memory: Self::DEFAULT_MEMORY,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

/// Bytes charged per table element: tables hold pointers (funcref or
/// externref), so a table costs host memory just as linear memory does.
const TABLE_ELEMENT_BYTES: u64 = 8;

/// Sums every linear memory and table of an instance against one limit.
///
/// `wasmtime::StoreLimits` checks each memory on its own, so a component with
/// several memories could hold several times its limit. This limiter charges
/// each growth against a running total instead. A refused growth is recorded
/// so that the trap that usually follows (a failed allocation aborts) is
/// reported as `memory_limit` rather than `guest_trap`.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: u64,
    used: u64,
    refused: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            used: 0,
            refused: false,
        }
    }

    /// Sets the limit for the next call; what is held already stays held.
    pub(crate) fn reset_for_call(&mut self, limit: u64) {
        self.limit = limit;
        self.refused = false;
    }

    /// Whether a growth was refused since the last reset.
    pub(crate) fn refused(&self) -> bool {
        self.refused
    }

    fn charge(&mut self, current: u64, desired: u64, maximum: Option<u64>) -> bool {
        let grow = desired.saturating_sub(current);
        let total = self.used.saturating_add(grow);
        if total > self.limit || maximum.is_some_and(|max| desired > max) {
            self.refused = true;
            return false;
        }
        self.used = total;
        true
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.charge(current as u64, desired as u64, maximum.map(|m| m as u64)))
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.charge(
            current as u64 * TABLE_ELEMENT_BYTES,
            desired as u64 * TABLE_ELEMENT_BYTES,
            maximum.map(|m| m as u64 * TABLE_ELEMENT_BYTES),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_charged_against_the_sum_of_all_memories() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        // A second memory of 60 would fit on its own, but not beside the first.
        assert!(!limiter.memory_growing(0, 60, None).unwrap());
        assert!(limiter.refused());
        assert_eq!(limiter.used, 60);
        assert!(limiter.memory_growing(0, 40, None).unwrap());
        assert_eq!(limiter.used, 100);
    }

    #[test]
    fn tables_count_towards_the_same_limit() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.table_growing(0, 10, None).unwrap());
        assert_eq!(limiter.used, 10 * TABLE_ELEMENT_BYTES);
        assert!(!limiter.table_growing(10, 100, None).unwrap());
    }

    #[test]
    fn a_new_call_clears_the_refusal_but_keeps_what_is_held() {
        let mut limiter = MemoryLimiter::new(10);
        assert!(!limiter.memory_growing(0, 11, None).unwrap());
        limiter.reset_for_call(20);
        assert!(!limiter.refused());
        assert!(limiter.memory_growing(0, 11, None).unwrap());
        assert_eq!(limiter.used, 11);
    }
}
