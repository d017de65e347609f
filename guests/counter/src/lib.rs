//! `counter`: returns how many calls this instance has served, as a decimal
//! number starting at 1. Run `per-process` it shows how widely an instance is
//! shared (one count per worker); run `per-request` it always answers 1.

use std::sync::atomic::{AtomicU64, Ordering};

wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

use bulkhead::plugin::types::{Error, Request};
use exports::bulkhead::plugin::handler::Guest;

static CALLS: AtomicU64 = AtomicU64::new(0);

struct Counter;

impl Guest for Counter {
    fn handle(_req: Request) -> Result<Vec<u8>, Error> {
        let n = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(n.to_string().into_bytes())
    }
}

export!(Counter);
