//! The core's integration tests: one binary, one module per area, shared helpers in `util`.

mod util;

mod agent;
mod alerts;
mod browser;
mod companion;
mod demo;
mod oauth;
mod recovery;
mod vault;
