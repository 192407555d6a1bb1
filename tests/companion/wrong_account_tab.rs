//! The browser tab of a re-authorization that signed in as the wrong account: the page
//! the loopback listener sends to the browser names the account signed in, the account
//! the credential belongs to, and the `--new-account` fix; nothing stored changes; the
//! `tether reauth` command says the same and exits 1, and `--new-account` replaces the
//! account. Real parts: `tether agent serve`, the companion (library and CLI) over pinned
//! HTTPS, oidc-provider with two users, and the listener's HTML read as the browser
//! receives it.

use super::support::{oidc_credential, Daemon};
use crate::require;
use crate::util::oidc::{self, OidcOptions, OidcProvider};
use std::sync::{Arc, Mutex};
use tether::companion::pair::PairOptions;
use tether::companion::reauth::{OpenError, Opener, ReauthOptions};
use tether::companion::secrets::Backend;
use tether::companion::Companion;
use tether::protocol::CredentialState;

/// The tab's request: its HTTP status and page, once the listener answers.
type Tab = tokio::task::JoinHandle<(u16, String)>;

/// The browser of an owner who signs in as `login`; keeps the tab's final page.
struct SignsInAs {
    oidc: Arc<OidcProvider>,
    login: &'static str,
    tab: Arc<Mutex<Option<Tab>>>,
}

impl Opener for SignsInAs {
    fn open(&self, url: &str) -> Result<(), OpenError> {
        let mut url = url::Url::parse(url).map_err(OpenError::new)?;
        url.query_pairs_mut()
            .append_pair("login_hint", self.login)
            .append_pair("prompt", "login");
        let oidc = self.oidc.clone();
        // Called from inside the re-auth future, so a runtime is current. The tab's page
        // comes only after the daemon answered the companion.
        let tab = tokio::spawn(async move {
            let callback = oidc.consent(&url).await;
            oidc::browser_get(&callback).await
        });
        *self.tab.lock().unwrap() = Some(tab);
        Ok(())
    }
}

impl SignsInAs {
    async fn page(&self) -> (u16, String) {
        let tab = self
            .tab
            .lock()
            .unwrap()
            .take()
            .expect("the browser was opened");
        tab.await.expect("the tab's request finished")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tab_of_a_wrong_account_sign_in_names_both_accounts_and_the_fix() {
    require!(oidc::available(), oidc::MISSING);
    let oidc = Arc::new(OidcProvider::start(OidcOptions::default()));
    let daemon = Daemon::start(&oidc_credential("youtube", &oidc, "")).await;
    let home = tempfile::tempdir().unwrap();
    let companion = Companion::open(home.path(), Backend::File);
    companion
        .pair(&daemon.pairing_code(), &PairOptions::default(), &mut |_| {
            false
        })
        .await
        .expect("pairing works");
    let browser = |login| SignsInAs {
        oidc: oidc.clone(),
        login,
        tab: Arc::default(),
    };

    let brand = browser("brand-channel");
    let first = companion
        .reauth(
            "studio",
            "youtube",
            &brand,
            ReauthOptions::default(),
            &|_| {},
        )
        .await
        .expect("first authorization");
    assert_eq!(first.state, CredentialState::Ok);
    assert_eq!(first.account.as_deref(), Some("brand-channel"));
    let (status, page) = brand.page().await;
    assert_eq!(status, 200, "{page}");

    let alice = browser("alice");
    let err = companion
        .reauth(
            "studio",
            "youtube",
            &alice,
            ReauthOptions::default(),
            &|_| {},
        )
        .await
        .expect_err("a sign-in as another account is refused");
    let said = tether::report::chain(&err);
    assert!(
        said.contains("this is alice") && said.contains("belongs to brand-channel"),
        "{said}"
    );
    let (_, page) = alice.page().await;
    // The words inside the page's detail paragraph, as the browser shows them.
    let detail = page
        .split("<p id=\"detail\">")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("no detail paragraph in the tab: {page}"));
    assert!(detail.contains("this is alice"), "{detail}");
    assert!(detail.contains("belongs to brand-channel"), "{detail}");
    assert!(
        detail.contains("tether reauth studio/youtube --new-account"),
        "{detail}"
    );
    assert!(detail.contains("sign in with that account"), "{detail}");
    assert!(detail.contains("Nothing stored changed"), "{detail}");
    // Trying again as the same account would be refused the same way.
    assert!(!detail.contains("try again"), "{detail}");
    assert!(page.contains("was not re-authorized"), "{page}");

    let now = companion
        .client("studio")
        .unwrap()
        .health()
        .await
        .unwrap()
        .credentials
        .into_iter()
        .find(|c| c.name == "youtube")
        .unwrap();
    assert_eq!(now.generation, first.generation, "nothing stored changed");
    assert_eq!(now.account.as_deref(), Some("brand-channel"));
}

/// `tether reauth` signing in as `login`: exit code, stderr and the tab's page.
async fn cli_reauth_as(
    config: &std::path::Path,
    oidc: &OidcProvider,
    login: &str,
    extra: &[&str],
) -> (i32, String, String) {
    let run = super::support::cli_reauth(config, oidc, Some(login), extra).await;
    (run.code, run.stderr, run.tab.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tether_reauth_as_another_account_exits_naming_both_and_new_account_replaces_it() {
    require!(oidc::available(), oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions::default());
    let daemon = Daemon::start(&oidc_credential("youtube", &oidc, "")).await;
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("tether");
    super::support::pair_file(&config, &daemon.pairing_code());
    let account = || async {
        let out = super::support::tether(&config, &[("TETHER_SECRETS", "file")])
            .args(["status", "--json"])
            .output()
            .expect("run tether status");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
        v.to_string()
    };

    let (code, stderr, _) = cli_reauth_as(&config, &oidc, "brand-channel", &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(account().await.contains("brand-channel"));

    let (code, stderr, page) = cli_reauth_as(&config, &oidc, "alice", &[]).await;
    assert_eq!(
        code, 1,
        "a sign-in as another account fails the command: {stderr}"
    );
    assert!(
        stderr.contains("this is alice") && stderr.contains("belongs to brand-channel"),
        "the CLI names the account signed in and the one expected: {stderr}"
    );
    assert!(
        stderr.contains("tether reauth studio/youtube --new-account"),
        "and the fix: {stderr}"
    );
    assert!(
        page.contains("this is alice") && page.contains("belongs to brand-channel"),
        "the tab says the same: {page}"
    );
    let status = account().await;
    assert!(
        status.contains("brand-channel") && !status.contains("\"alice\""),
        "nothing stored changed: {status}"
    );

    let (code, stderr, _) = cli_reauth_as(&config, &oidc, "alice", &["--new-account"]).await;
    assert_eq!(code, 0, "--new-account replaces it on purpose: {stderr}");
    let status = account().await;
    assert!(status.contains("\"alice\""), "{status}");
}
