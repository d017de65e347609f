//! bulkhead's integration tests: one test binary, one module per area.

mod attacks;
mod clients;
mod isolation;
mod needs;
mod sandbox;
mod service;
mod tools;
