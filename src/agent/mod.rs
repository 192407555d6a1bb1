//! The agent daemon: HTTPS API, pairing, checker, broker, alerts, metrics.
pub mod alerts;
