//! The credential vault: records in several locations, atomic generation-numbered writes.
