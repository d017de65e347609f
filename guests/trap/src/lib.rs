//! `trap`: traps. The payload picks how: `unreachable` executes the
//! `unreachable` instruction, `overflow` recurses until the stack is
//! exhausted, anything else panics (which aborts with `unreachable`).

wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

use bulkhead::plugin::types::{Error, Request};
use exports::bulkhead::plugin::handler::Guest;

struct Trap;

#[inline(never)]
#[expect(unconditional_recursion, reason = "the point is to exhaust the stack")]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 16]);
    recurse(depth + 1).wrapping_add(frame[(depth % 16) as usize])
}

impl Guest for Trap {
    fn handle(req: Request) -> Result<Vec<u8>, Error> {
        match req.payload.as_slice() {
            b"unreachable" => std::process::abort(),
            b"overflow" => Ok(recurse(0).to_string().into_bytes()),
            _ => panic!("trap guest: deliberate panic"),
        }
    }
}

export!(Trap);
