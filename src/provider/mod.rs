//! The provider catalog: endpoints, quirks, error classification and probes per provider.
