//! `sleep`: sleeps the number of milliseconds given as a decimal payload
//! through the WASI monotonic clock and returns `slept N`. A payload that is
//! not a number is the guest's own `invalid-input` error.

use std::time::Duration;

wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

use bulkhead::plugin::types::{Error, Request};
use exports::bulkhead::plugin::handler::Guest;

struct Sleep;

impl Guest for Sleep {
    fn handle(req: Request) -> Result<Vec<u8>, Error> {
        let text = String::from_utf8_lossy(&req.payload);
        let ms: u64 = text
            .trim()
            .parse()
            .map_err(|e| Error::InvalidInput(format!("payload {text:?} is not a number of milliseconds: {e}")))?;
        std::thread::sleep(Duration::from_millis(ms));
        Ok(format!("slept {ms}").into_bytes())
    }
}

export!(Sleep);
