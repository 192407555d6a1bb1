//! The owner's side: config, keyring secrets, agent client, watcher, notifier, re-auth.
