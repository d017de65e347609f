//! `fs`: exercises the namespace's directory, preopened as `/data`.
//! Commands: `write PATH TEXT`, `read PATH`, `list DIR`. Paths are as the
//! guest sees them. A refused or failed operation is the guest's own
//! `failed` error; an unknown command is `invalid-input`. Each operation is
//! reported through the `log` import.

wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

use bulkhead::plugin::types::{Error, Request};
use exports::bulkhead::plugin::handler::Guest;

use bulkhead::plugin::log::{self, Level};

struct Fs;

fn run(command: &str) -> Result<String, Error> {
    let failed = |what: &str, e: std::io::Error| Error::Failed(format!("{what}: {e}"));
    let (verb, rest) = command.split_once(' ').unwrap_or((command, ""));
    match verb {
        "write" => {
            let (path, text) = rest.split_once(' ').unwrap_or((rest, ""));
            std::fs::write(path, text).map_err(|e| failed(&format!("write {path}"), e))?;
            Ok(String::new())
        }
        "read" => std::fs::read_to_string(rest).map_err(|e| failed(&format!("read {rest}"), e)),
        "list" => {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(rest).map_err(|e| failed(&format!("list {rest}"), e))? {
                let entry = entry.map_err(|e| failed(&format!("list {rest}"), e))?;
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            Ok(names.join("\n"))
        }
        other => Err(Error::InvalidInput(format!(
            "unknown command {other:?}: expected write, read or list"
        ))),
    }
}

impl Guest for Fs {
    fn handle(req: Request) -> Result<Vec<u8>, Error> {
        let command = String::from_utf8_lossy(&req.payload).into_owned();
        log::log(Level::Info, &format!("fs {command}"));
        run(&command).map(String::into_bytes)
    }
}

export!(Fs);
