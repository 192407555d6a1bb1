//! An error and its causes on one line (`what failed: why: why`), for logs, health texts and
//! replies that carry a description rather than a typed error.

/// The error and every source below it, joined with `: `. A cause whose text an earlier
/// part already contains is left out, so a third-party error that repeats its own source
/// (as some transport errors do) is still printed once.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot save {path}")]
    struct Outer {
        path: &'static str,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn joins_every_cause_once() {
        let e = Outer {
            path: "a.toml",
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(super::chain(&e), "cannot save a.toml: disk full");
    }
}
