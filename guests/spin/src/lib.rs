//! `spin`: loops forever without calling the host. Only fuel or the
//! epoch deadline can stop it.

wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

use bulkhead::plugin::types::{Error, Request};
use exports::bulkhead::plugin::handler::Guest;

struct Spin;

impl Guest for Spin {
    fn handle(_req: Request) -> Result<Vec<u8>, Error> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

export!(Spin);
