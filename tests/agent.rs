//! Integration tests for `tether::agent`.
