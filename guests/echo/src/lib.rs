//! `echo`: returns its payload unchanged. The smallest useful plugin; the
//! benches and the cold-start harness measure the host with it.

wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

use bulkhead::plugin::types::{Error, Request};
use exports::bulkhead::plugin::handler::Guest;

struct Echo;

impl Guest for Echo {
    fn handle(req: Request) -> Result<Vec<u8>, Error> {
        Ok(req.payload)
    }
}

export!(Echo);
