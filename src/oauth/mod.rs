//! OAuth flows: authorization requests with PKCE, the loopback listener, exchange, refresh.
