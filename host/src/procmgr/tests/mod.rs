//! Behaviour tests of the manager against a fake syncer. Timing tests run on
//! paused tokio time, so they are exact and never sleep for real.

mod defects;
mod health;
mod lifecycle;
mod metrics;
mod scale;
mod termination;
