//! Tests of the client commands against a fake host that records what it is
//! sent and answers with canned responses.

mod commands;
mod errors;
mod fake_server;
mod parsing;
mod processes;

use super::{BaseUrl, ClientArgs};
use fake_server::FakeServer;

/// Client arguments pointing at `server`.
fn args_for(server: &FakeServer) -> ClientArgs {
    ClientArgs::new(BaseUrl::parse(server.url()).expect("the fake server's URL is valid"))
}
