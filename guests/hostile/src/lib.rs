//! `hostile`: a plugin written to do harm, one attack per command. Each
//! command tries to reach past its compartment or past a bound of the host;
//! the tests check that it gets its own typed error and that its neighbours
//! notice nothing.
//!
//! Commands (the payload, as text):
//! - `error N`: fails with an error message of N bytes (a reply too large
//!   for a frame, unbounded).
//! - `output N`: returns N bytes.
//! - `streams N`: opens stdout N times and never closes it (host-side
//!   resources and buffers).
//! - `pollables N`: subscribes to a clock N times and keeps every pollable.
//! - `random N`: asks the host for N random bytes at once.
//! - `log N`: logs N lines of 4 KiB each.
//! - `log-forge`: logs a message with a newline and a line that looks like
//!   the host's own.
//! - `leak-write`: fills a 64 KiB zero-initialised static with a pattern and
//!   returns (the instance goes, its pool slot may be reused).
//! - `leak-read`: counts the bytes of that static that are not zero in a
//!   fresh instance: any means a previous instance's memory leaked through.

wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

use bulkhead::plugin::log::{self, Level};
use bulkhead::plugin::types::{Error, Request};
use exports::bulkhead::plugin::handler::Guest;

struct Hostile;

/// Zero at instantiation (it is not in a data segment); a leak otherwise.
static mut AREA: [u8; 65536] = [0; 65536];

const PATTERN: u8 = 0xA5;

fn number(rest: &str) -> Result<usize, Error> {
    rest.trim()
        .parse()
        .map_err(|_| Error::InvalidInput(format!("{rest:?} is not a number")))
}

fn run(command: &str) -> Result<Vec<u8>, Error> {
    let (verb, rest) = command.split_once(' ').unwrap_or((command, ""));
    match verb {
        "error" => Err(Error::Failed("x".repeat(number(rest)?))),
        "output" => Ok(vec![b'x'; number(rest)?]),
        "streams" => {
            for _ in 0..number(rest)? {
                let stream = wasi::cli::stdout::get_stdout();
                let _ = stream.write(&[b'a'; 100]);
                std::mem::forget(stream);
            }
            Ok(b"done".to_vec())
        }
        "pollables" => {
            for _ in 0..number(rest)? {
                std::mem::forget(wasi::clocks::monotonic_clock::subscribe_duration(1_000_000_000));
            }
            Ok(b"done".to_vec())
        }
        "random" => {
            let bytes = wasi::random::random::get_random_bytes(number(rest)? as u64);
            Ok(bytes.len().to_string().into_bytes())
        }
        "log" => {
            let line = "L".repeat(4096);
            for _ in 0..number(rest)? {
                log::log(Level::Info, &line);
            }
            Ok(b"logged".to_vec())
        }
        "log-forge" => {
            log::log(
                Level::Info,
                "ok\nERROR bulkhead: admin token accepted for everyone\r\x1b[2J",
            );
            Ok(b"forged".to_vec())
        }
        "leak-write" => {
            // SAFETY: one call runs at a time in a fresh instance, and
            // nothing else holds a reference to the static.
            let area = unsafe { &mut *std::ptr::addr_of_mut!(AREA) };
            area.fill(PATTERN);
            std::hint::black_box(&area);
            Ok(b"written".to_vec())
        }
        "leak-read" => {
            // SAFETY: as above; this only reads.
            let area = unsafe { &*std::ptr::addr_of!(AREA) };
            let leaked = area.iter().filter(|&&b| b != 0).count();
            Ok(leaked.to_string().into_bytes())
        }
        other => Err(Error::InvalidInput(format!("unknown command {other:?}"))),
    }
}

impl Guest for Hostile {
    fn handle(req: Request) -> Result<Vec<u8>, Error> {
        run(&String::from_utf8_lossy(&req.payload))
    }
}

export!(Hostile);
