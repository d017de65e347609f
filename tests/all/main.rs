//! bulkhead's integration tests: one test binary, one module per area.

mod isolation;
mod sandbox;
mod service;
