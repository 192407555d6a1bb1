//! Integration tests for `tether::oauth`.
