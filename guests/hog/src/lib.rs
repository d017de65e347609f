//! `hog`: grows its linear memory one MiB at a time until the host refuses,
//! touching every page so the memory is really used. Only the memory limit
//! stops it (the failed allocation aborts, which traps).

wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

use bulkhead::plugin::types::{Error, Request};
use exports::bulkhead::plugin::handler::Guest;

struct Hog;

const CHUNK: usize = 1 << 20;

impl Guest for Hog {
    fn handle(_req: Request) -> Result<Vec<u8>, Error> {
        let mut held: Vec<Vec<u8>> = Vec::new();
        loop {
            held.push(std::hint::black_box(vec![0xa5; CHUNK]));
        }
    }
}

export!(Hog);
