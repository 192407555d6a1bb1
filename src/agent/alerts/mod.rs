//! Fallback alert channels (webhook, ntfy, Telegram, email) that need none of the agent's OAuth credentials.
