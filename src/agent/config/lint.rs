//! `tether agent check`: lints the config and the machine it runs on, and names a fix for
//! every problem it finds.
//!
//! Problem classes ([`ProblemClass`]): provider endpoints that are not https or cannot be
//! reached, client secret files that are missing, empty, readable by others or not
//! readable by the agent's user, backups on the state directory's filesystem (one full or
//! failed disk takes both), a clock that disagrees with a provider's `Date` header, and
//! output directories the agent's user cannot write. The checks read files and make one
//! GET per endpoint URL; they change nothing.

use super::agent::AgentConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest clock difference to a provider accepted without a problem. `Date` has
/// one-second resolution and a request takes a moment; tokens carry `iat`/`exp` checked
/// with a few minutes of leeway at most, so a minute already matters.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// How long one endpoint may take to answer.
pub const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(10);

/// What kind of problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProblemClass {
    /// A provider's settings cannot be used at all.
    Provider,
    /// An endpoint that is not https.
    PlainHttp,
    /// An endpoint that cannot be reached.
    Unreachable,
    /// A client secret file that is missing, empty, too open or not readable by the agent.
    SecretFile,
    /// No backups, or a backup on the state directory's filesystem.
    Backups,
    /// The clock disagrees with a provider's.
    ClockSkew,
    /// An output directory the agent's user cannot write.
    OutputDir,
}

impl ProblemClass {
    /// A short label for the printout.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemClass::Provider => "provider",
            ProblemClass::PlainHttp => "plain-http",
            ProblemClass::Unreachable => "unreachable",
            ProblemClass::SecretFile => "secret-file",
            ProblemClass::Backups => "backups",
            ProblemClass::ClockSkew => "clock-skew",
            ProblemClass::OutputDir => "output-dir",
        }
    }
}

/// One problem and its fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Its class.
    pub class: ProblemClass,
    /// What is wrong, naming the object.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "problem [{}]: {}\n  fix: {}",
            self.class.as_str(),
            self.problem,
            self.fix
        )
    }
}

/// The user the daemon runs as, for permission checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentUser {
    /// Its name (for the fixes).
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary and supplementary groups.
    pub gids: Vec<u32>,
}

impl AgentUser {
    /// The user called `name`, from the password database.
    pub fn by_name(name: &str) -> Option<AgentUser> {
        let c = std::ffi::CString::new(name).ok()?;
        // SAFETY: getpwnam returns a pointer into static storage or null; it is read at
        // once, before any other call that could overwrite it (the CLI is single-threaded
        // here).
        let pw = unsafe { libc::getpwnam(c.as_ptr()) };
        if pw.is_null() {
            return None;
        }
        // SAFETY: `pw` is non-null and points to a valid passwd entry.
        let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
        let mut gids = vec![0 as libc::gid_t; 64];
        let mut n = gids.len() as libc::c_int;
        // SAFETY: `gids` has room for `n` entries; getgrouplist writes at most `n` and
        // sets `n` to the count.
        let rc = unsafe { libc::getgrouplist(c.as_ptr(), gid, gids.as_mut_ptr(), &mut n) };
        gids.truncate(if rc < 0 { 0 } else { n.max(0) as usize });
        if !gids.contains(&gid) {
            gids.push(gid);
        }
        Some(AgentUser {
            name: name.to_string(),
            uid,
            gids,
        })
    }

    /// The user owning `uid`, by name.
    pub fn by_uid(uid: u32) -> Option<AgentUser> {
        // SAFETY: as in `by_name`; the name is copied out at once.
        let name = unsafe {
            let pw = libc::getpwuid(uid);
            if pw.is_null() {
                return None;
            }
            std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned()
        };
        AgentUser::by_name(&name)
    }

    /// The daemon's user as far as the config tells: the owner of the state directory
    /// when it exists (the daemon made it), else whoever runs this command.
    pub fn guess(cfg: &AgentConfig) -> Option<AgentUser> {
        let uid = std::fs::metadata(&cfg.state_dir)
            .map(|m| m.uid())
            // SAFETY: getuid cannot fail.
            .unwrap_or_else(|_| unsafe { libc::getuid() });
        AgentUser::by_uid(uid)
    }

    /// Whether this user may do `want` (a mask of r=4, w=2, x=1) on a file with `meta`.
    fn may(&self, meta: &std::fs::Metadata, want: u32) -> bool {
        if self.uid == 0 {
            return true;
        }
        let mode = meta.mode();
        let bits = if meta.uid() == self.uid {
            (mode >> 6) & 7
        } else if self.gids.contains(&meta.gid()) {
            (mode >> 3) & 7
        } else {
            mode & 7
        };
        bits & want == want
    }
}

/// Runs every check on `cfg`; `user` is the daemon's user (see [`AgentUser::guess`]).
pub async fn check(
    cfg: &AgentConfig,
    http: &reqwest::Client,
    user: Option<&AgentUser>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    endpoints(cfg, http, &mut out).await;
    secret_files(cfg, user, &mut out);
    backups(cfg, &mut out);
    output_dirs(cfg, user, &mut out);
    out
}

/// The HTTP client the checks use: no redirects, a bounded wait.
pub fn http_client() -> reqwest::Client {
    crate::oauth::http_client_with_timeouts(ENDPOINT_TIMEOUT, ENDPOINT_TIMEOUT)
}

async fn endpoints(cfg: &AgentConfig, http: &reqwest::Client, out: &mut Vec<Problem>) {
    // URL → the credentials and fields that use it, so each is fetched once.
    let mut reach: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &cfg.credentials {
        let p = match c.base_provider() {
            Ok((p, _)) => p,
            Err(e) => {
                out.push(Problem {
                    class: ProblemClass::Provider,
                    problem: format!("credential {}: {}", c.name, crate::report::chain(&e)),
                    fix: format!(
                        "fix provider, issuer or [credentials.overrides] of credential {} in the config",
                        c.name
                    ),
                });
                continue;
            }
        };
        let mut urls: Vec<(&'static str, url::Url)> = p
            .endpoints()
            .into_iter()
            .map(|(f, u)| (f, u.clone()))
            .collect();
        if let Some(issuer) = &c.issuer {
            match url::Url::parse(issuer) {
                Ok(u) => urls.push(("issuer", u)),
                Err(e) => out.push(Problem {
                    class: ProblemClass::Provider,
                    problem: format!(
                        "credential {}: issuer `{issuer}` is not a url ({e})",
                        c.name
                    ),
                    fix: "set issuer to the provider's https issuer url".into(),
                }),
            }
        }
        for (field, u) in urls {
            if u.scheme() != "https" {
                out.push(Problem {
                    class: ProblemClass::PlainHttp,
                    problem: format!(
                        "credential {}: {field} {u} is plain http; tokens and client secrets would cross the network unencrypted",
                        c.name
                    ),
                    fix: "use the provider's https endpoint (plain http is meant only for a test provider on this machine)".into(),
                });
            }
            // The authorization page is opened by the owner's browser, not by the daemon.
            if field == "auth_url" {
                continue;
            }
            let target = if field == "issuer" {
                format!(
                    "{}/.well-known/openid-configuration",
                    u.as_str().trim_end_matches('/')
                )
            } else {
                u.to_string()
            };
            reach
                .entry(target)
                .or_default()
                .push(format!("credential {}: {field}", c.name));
        }
    }
    let fetches = reach.iter().map(|(url, users)| async move {
        let started = chrono::Utc::now();
        let r = http.get(url).send().await;
        (url, users, started, r)
    });
    let mut skewed_hosts = BTreeSet::new();
    for (url, users, started, r) in futures_util::future::join_all(fetches).await {
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(String::from))
            .unwrap_or_default();
        match r {
            Err(e) => out.push(Problem {
                class: ProblemClass::Unreachable,
                problem: format!(
                    "{} {url} cannot be reached: {}",
                    users.join(", "),
                    crate::report::chain(&e)
                ),
                fix: format!(
                    "check DNS, the firewall and any proxy between this machine and {host}; the daemon cannot refresh tokens without it"
                ),
            }),
            Ok(resp) => {
                let Some(date) = resp
                    .headers()
                    .get(reqwest::header::DATE)
                    .and_then(|d| d.to_str().ok())
                    .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
                else {
                    continue;
                };
                // The server stamped its Date between our send and now; compare with the
                // middle of that window.
                let now = chrono::Utc::now();
                let mid = started + (now - started) / 2;
                let skew = (mid - date.with_timezone(&chrono::Utc)).num_seconds();
                if skew.unsigned_abs() > MAX_CLOCK_SKEW.as_secs() && skewed_hosts.insert(host.clone()) {
                    let (way, secs) = if skew > 0 { ("ahead of", skew) } else { ("behind", -skew) };
                    out.push(Problem {
                        class: ProblemClass::ClockSkew,
                        problem: format!(
                            "this machine's clock is {secs} s {way} {host}'s (its Date header); tokens will look expired or not yet valid"
                        ),
                        fix: "set the clock from the network: `timedatectl set-ntp true` (systemd-timesyncd) or install chrony".into(),
                    });
                }
            }
        }
    }
}

fn secret_files(cfg: &AgentConfig, user: Option<&AgentUser>, out: &mut Vec<Problem>) {
    for c in &cfg.credentials {
        let Some(path) = &c.client_secret_file else {
            continue;
        };
        let p = path.display();
        let mut problem = |problem: String, fix: String| {
            out.push(Problem {
                class: ProblemClass::SecretFile,
                problem: format!("credential {}: client secret file {p} {problem}", c.name),
                fix,
            })
        };
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                problem(
                    format!("cannot be read ({e})"),
                    format!(
                        "write the client secret on the first line of {p}, then `chmod 600 {p}`{}",
                        user.map(|u| format!(" and `chown {} {p}`", u.name))
                            .unwrap_or_default()
                    ),
                );
                continue;
            }
        };
        if meta.mode() & 0o077 != 0 {
            problem(
                format!(
                    "is mode {:04o}; other users can read the client secret",
                    meta.mode() & 0o7777
                ),
                format!("`chmod 600 {p}`"),
            );
        }
        if let Some(u) = user {
            if !u.may(&meta, 4) || !dirs_searchable(path, u) {
                problem(
                    format!("cannot be read by the agent's user {}", u.name),
                    format!("`chown {} {p}` (keep it mode 0600)", u.name),
                );
                continue;
            }
        }
        match std::fs::read_to_string(path) {
            Ok(t) if t.lines().next().unwrap_or("").trim().is_empty() => problem(
                "is empty (the secret is its first line)".into(),
                format!("write the client secret on the first line of {p}"),
            ),
            _ => {}
        }
    }
}

/// Whether `u` may enter every directory above `path`.
fn dirs_searchable(path: &Path, u: &AgentUser) -> bool {
    path.ancestors()
        .skip(1)
        .filter(|d| !d.as_os_str().is_empty())
        .all(|d| std::fs::metadata(d).map(|m| u.may(&m, 1)).unwrap_or(false))
}

/// The nearest existing directory at or above `path`.
fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .find(|d| !d.as_os_str().is_empty() && d.exists())
        .map(Path::to_path_buf)
}

fn backups(cfg: &AgentConfig, out: &mut Vec<Problem>) {
    if cfg.backup_dirs.is_empty() {
        out.push(Problem {
            class: ProblemClass::Backups,
            problem: "no backup_dirs: the vault lives in the state directory alone".into(),
            fix: "add backup_dirs = [\"/path/on/another/disk/tether\"] to the config".into(),
        });
        return;
    }
    let dev = |p: &Path| {
        existing_ancestor(p)
            .and_then(|d| std::fs::metadata(d).ok())
            .map(|m| m.dev())
    };
    let state = dev(&cfg.state_dir);
    for b in &cfg.backup_dirs {
        if state.is_some() && dev(b) == state {
            out.push(Problem {
                class: ProblemClass::Backups,
                problem: format!(
                    "backup {} is on the same filesystem as the state directory {}; one full or failed disk takes both",
                    b.display(),
                    cfg.state_dir.display()
                ),
                fix: "put the backup on another disk or mount (and add it to ReadWritePaths with `systemctl edit tether-agent`)".into(),
            });
        }
    }
}

fn output_dirs(cfg: &AgentConfig, user: Option<&AgentUser>, out: &mut Vec<Problem>) {
    let Some(u) = user else {
        return;
    };
    let mut seen = BTreeSet::new();
    for c in &cfg.credentials {
        for o in &c.outputs {
            let dir = match o.path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !seen.insert(dir.clone()) {
                continue;
            }
            // The daemon creates a missing directory, so the nearest existing one counts.
            let Some(existing) = existing_ancestor(&dir) else {
                continue;
            };
            let ok = std::fs::metadata(&existing)
                .map(|m| m.is_dir() && u.may(&m, 3))
                .unwrap_or(false)
                && dirs_searchable(&existing.join("x"), u);
            if !ok {
                let d = dir.display();
                out.push(Problem {
                    class: ProblemClass::OutputDir,
                    problem: format!(
                        "credential {}: the agent's user {} cannot write {} (for output {})",
                        c.name,
                        u.name,
                        existing.display(),
                        o.path.display()
                    ),
                    fix: format!(
                        "`install -d -o {} -m 0750 {d}` (or give the directory to a group both {} and your agent are in); under systemd also add {d} to ReadWritePaths with `systemctl edit tether-agent`",
                        u.name, u.name
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn permission_bits_follow_owner_group_other() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let meta = std::fs::metadata(&f).unwrap();
        let owner = AgentUser {
            name: "o".into(),
            uid: meta.uid().max(1),
            gids: vec![],
        };
        let other = AgentUser {
            name: "n".into(),
            uid: meta.uid() + 4242,
            gids: vec![meta.gid() + 4242],
        };
        let group = AgentUser {
            gids: vec![meta.gid()],
            ..other.clone()
        };
        if meta.uid() != 0 {
            assert!(owner.may(&meta, 6));
        }
        assert!(group.may(&meta, 4));
        assert!(!group.may(&meta, 2));
        assert!(!other.may(&meta, 4));
    }
}
