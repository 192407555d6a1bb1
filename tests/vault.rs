//! Integration tests for `tether::vault`.
