//! Integration tests for `tether::companion`.
