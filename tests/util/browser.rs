//! A real headless browser for end-to-end tests: Debian's chromium driven through
//! chromedriver over plain WebDriver HTTP, so a test can click a consent button and read
//! the page a person would see.
//!
//! ```ignore
//! require!(util::browser::available(), util::browser::MISSING);
//! let browser = Browser::start().await;
//! browser.navigate(authorize_url.as_str()).await;
//! browser.click("#allow").await;
//! let landed = browser.wait_for_url_prefix(&callback, Duration::from_secs(20)).await;
//! browser.wait_for_text("Done", Duration::from_secs(10)).await;
//! browser.screenshot(&dir.path().join("done.png")).await;
//! // dropped: the session is deleted, chromedriver and every chromium process killed
//! ```
//!
//! Every method panics with the page's URL in the message when the browser misbehaves:
//! these are test helpers, and a failing step should say where the browser was.

use base64::Engine;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The browser binary (Debian's launcher script; it execs /usr/lib/chromium/chromium).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The WebDriver server matching it (Debian package chromium-driver).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Why browser tests are skipped, for `require!`.
pub const MISSING: &str =
    "a headless browser: install Debian's `chromium` and `chromium-driver` (/usr/bin/chromium, /usr/bin/chromedriver)";

/// How long chromedriver may take to say it listens, and chromium to open a session
/// (slow on a loaded 2-core CI machine, quick otherwise).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound on one WebDriver command (page loads included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the `wait_for_*` helpers look again.
const POLL: Duration = Duration::from_millis(50);
/// The W3C WebDriver key of an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Chromium switches for a closed network and a throwaway machine. Without the
/// networking ones chromium tries to reach update, sync and metrics servers.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    // Nowhere to send crash reports. (The crashpad handler still starts, in a session of
    // its own; Drop finds it by the temp HOME on its command line. The switch that would
    // stop it, --disable-crashpad-for-testing, leaves renderers unable to start.)
    "--disable-crash-reporter",
    // Never ask the desktop keyring (gnome-keyring runs in CI) for a password store.
    "--password-store=basic",
    "--window-size=1280,900",
];

/// True when chromium and chromedriver are installed.
pub fn available() -> bool {
    Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()
}

/// A running headless chromium with one WebDriver session. Dropping it deletes the
/// session and kills chromedriver and every chromium process (one process group).
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT`
    driver: String,
    /// `{driver}/session/{id}`
    session: String,
    child: Child,
    /// What chromedriver printed, for failure messages.
    log: Arc<Mutex<String>>,
    // Dropped after the processes are dead (field order): chromium writes into it.
    profile: tempfile::TempDir,
    closed: bool,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a chromium session with a
    /// fresh profile in a temp dir.
    pub async fn start() -> Browser {
        let profile = tempfile::Builder::new()
            .prefix("tether-browser-")
            .tempdir()
            .expect("create a temp dir for the browser profile");
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg("--port=0")
            // The launcher script needs coreutils on PATH; HOME keeps chromium's own
            // files (~/.config, ~/.cache) inside the temp dir. Nothing else leaks in:
            // no proxy variables, no D-Bus address, no DISPLAY (headless).
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", profile.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group, so Drop can kill chromedriver and all of chromium at once.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {CHROMEDRIVER}: {e} ({MISSING})"));
        let log = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = std::sync::mpsc::channel::<u16>();
        let sink = log.clone();
        std::thread::spawn(move || {
            // Keep draining after the port line so chromedriver never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = started_port(&line) {
                    let _ = tx.send(port);
                }
                push_line(&sink, &line);
            }
        });
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                push_line(&sink, &line);
            }
        });
        let port = tokio::task::spawn_blocking(move || rx.recv_timeout(START_TIMEOUT))
            .await
            .expect("the port reader task does not panic");
        let mut browser = Browser {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(COMMAND_TIMEOUT)
                .build()
                .expect("build the WebDriver HTTP client"),
            driver: String::new(),
            session: String::new(),
            child,
            log,
            profile,
            closed: false,
        };
        let port = match port {
            Ok(port) => port,
            Err(_) => panic!(
                "chromedriver did not report its port within {START_TIMEOUT:?}; it printed:\n{}",
                browser.log()
            ),
        };
        browser.driver = format!("http://127.0.0.1:{port}");
        browser.wait_until_ready().await;
        browser.open_session().await;
        browser
    }

    /// Polls `GET /status` until chromedriver says it is ready for sessions.
    async fn wait_until_ready(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ready = match self
                .http
                .get(format!("{}/status", self.driver))
                .send()
                .await
            {
                Ok(resp) => resp
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver at {} never became ready; it printed:\n{}",
                self.driver,
                self.log()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    async fn open_session(&mut self) {
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!(
            "--user-data-dir={}",
            self.profile.path().join("profile").display()
        ));
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    // A short implicit wait lets `click` find a button on a page that is
                    // still rendering, without a test having to wait for it first.
                    "timeouts": { "implicit": 5000, "pageLoad": 30000, "script": 10000 },
                    "goog:chromeOptions": { "binary": CHROMIUM, "args": args }
                }
            }
        });
        let url = format!("{}/session", self.driver);
        let reply = tokio::time::timeout(START_TIMEOUT, self.http.post(&url).json(&caps).send())
            .await
            .unwrap_or_else(|_| panic!("chromium session did not open in {START_TIMEOUT:?}"));
        let value = match reply {
            Ok(resp) => unwrap_value(resp).await,
            Err(e) => Err(format!("POST /session: {e}")),
        }
        .unwrap_or_else(|e| {
            panic!(
                "open a chromium session: {e}; chromedriver printed:\n{}",
                self.log()
            )
        });
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("new session reply without a sessionId: {value}"));
        self.session = format!("{}/session/{id}", self.driver);
    }

    /// The profile's temp dir (every chromium process has it on its command line).
    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }

    /// Process id of chromedriver (the leader of the browser's process group).
    pub fn driver_pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// One WebDriver command on the session; `Err` carries WebDriver's error text.
    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.session);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        unwrap_value(resp)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))
    }

    async fn try_current_url(&self) -> Result<String, String> {
        let v = self.command(reqwest::Method::GET, "/url", None).await?;
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("GET /url answered {v}"))
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page and returns
    /// its result.
    pub async fn try_execute(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// [`try_execute`](Self::try_execute), panicking on error.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        match self.try_execute(script, args).await {
            Ok(v) => v,
            Err(e) => panic!("browser: run script at {}: {e}", self.where_().await),
        }
    }

    async fn try_page_text(&self) -> Result<String, String> {
        let v = self
            .try_execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    async fn find(&self, css: &str) -> Result<String, String> {
        let v = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await?;
        v[ELEMENT_KEY]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("find `{css}` answered {v}"))
    }

    /// The page's URL for failure messages ("?" while the browser cannot say).
    async fn where_(&self) -> String {
        self.try_current_url()
            .await
            .unwrap_or_else(|e| format!("? ({e})"))
    }

    /// Loads `url` and waits for the page's load event.
    pub async fn navigate(&self, url: &str) {
        if let Err(e) = self
            .command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
        {
            panic!("browser: navigate to {url}: {e}");
        }
    }

    /// The URL the browser shows now.
    pub async fn current_url(&self) -> url::Url {
        let raw = self
            .try_current_url()
            .await
            .unwrap_or_else(|e| panic!("browser: read the current URL: {e}"));
        url::Url::parse(&raw).unwrap_or_else(|e| panic!("browser: current URL `{raw}`: {e}"))
    }

    /// The visible text of the page (`document.body.innerText`).
    pub async fn page_text(&self) -> String {
        match self.try_page_text().await {
            Ok(t) => t,
            Err(e) => panic!(
                "browser: read the page text at {}: {e}",
                self.where_().await
            ),
        }
    }

    /// The page's HTML source (for finding selectors and for failure messages).
    pub async fn page_source(&self) -> String {
        match self.command(reqwest::Method::GET, "/source", None).await {
            Ok(v) => v.as_str().unwrap_or_default().to_owned(),
            Err(e) => panic!(
                "browser: read the page source at {}: {e}",
                self.where_().await
            ),
        }
    }

    /// Clicks the first element matching `css` (waiting up to the implicit 5 s for it to
    /// appear), as a person would with the mouse. A click that submits a form returns
    /// once the navigation started; use `wait_for_url_prefix` for where it lands.
    pub async fn click(&self, css: &str) {
        let result = match self.find(css).await {
            Ok(id) => self
                .command(
                    reqwest::Method::POST,
                    &format!("/element/{id}/click"),
                    Some(json!({})),
                )
                .await
                .map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            panic!("browser: click `{css}` at {}: {e}", self.where_().await);
        }
    }

    /// Clears the input matching `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let result = async {
            let id = self.find(css).await?;
            self.command(
                reqwest::Method::POST,
                &format!("/element/{id}/clear"),
                Some(json!({})),
            )
            .await?;
            self.command(
                reqwest::Method::POST,
                &format!("/element/{id}/value"),
                Some(json!({ "text": text })),
            )
            .await
        }
        .await;
        if let Err(e) = result {
            panic!("browser: type into `{css}` at {}: {e}", self.where_().await);
        }
    }

    /// Polls until the page's text contains `needle`, and returns that text.
    pub async fn wait_for_text(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            // Errors while a navigation is in flight ("document unloaded") are expected:
            // look again until the deadline.
            let last = match self.try_page_text().await {
                Ok(text) if text.contains(needle) => return text,
                other => other,
            };
            if Instant::now() >= deadline {
                panic!(
                    "browser: the page at {} did not show {needle:?} within {timeout:?}; it shows: {last:?}",
                    self.where_().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls until the browser's URL starts with `prefix`, and returns that URL.
    pub async fn wait_for_url_prefix(&self, prefix: &str, timeout: Duration) -> url::Url {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.try_current_url().await;
            if let Ok(url) = &now {
                if url.starts_with(prefix) {
                    return url::Url::parse(url)
                        .unwrap_or_else(|e| panic!("browser: current URL `{url}`: {e}"));
                }
            }
            if Instant::now() >= deadline {
                let text = self.try_page_text().await.unwrap_or_default();
                panic!(
                    "browser: never reached {prefix} within {timeout:?}; it is at {now:?} showing: {text:?}"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Saves a PNG screenshot of the viewport to `path` and returns its bytes.
    pub async fn screenshot(&self, path: &Path) -> Vec<u8> {
        let v = match self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await
        {
            Ok(v) => v,
            Err(e) => panic!("browser: screenshot at {}: {e}", self.where_().await),
        };
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("WebDriver screenshots are base64");
        std::fs::write(path, &png)
            .unwrap_or_else(|e| panic!("write screenshot {}: {e}", path.display()));
        png
    }

    /// Ends the session politely (chromium quits and its children with it), then stops
    /// chromedriver. Drop does the same without waiting on the async runtime.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            self.command(reqwest::Method::DELETE, "", None),
        )
        .await;
        self.closed = true;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.closed && !self.session.is_empty() {
            // Drop may run inside the async runtime (even while a test panics), so this is
            // a plain blocking HTTP/1.0 request rather than reqwest.
            delete_session(&self.session);
        }
        // SAFETY: kill(2) with a negative pid signals the process group that spawn()
        // created with chromedriver as its leader; it touches no memory.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
        // chrome_crashpad_handler calls setsid, escaping the group; it (like every chromium
        // process) carries the temp dir, HOME of the browser, on its command line.
        for pid in processes_mentioning(self.profile.path()) {
            // SAFETY: as above, a signal to one process id; no memory involved.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
}

/// `DELETE /session/{id}` over a blocking socket with short timeouts.
fn delete_session(session_url: &str) {
    let Ok(url) = url::Url::parse(session_url) else {
        return;
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port()) else {
        return;
    };
    let Ok(mut s) = std::net::TcpStream::connect((host, port)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let req = format!(
        "DELETE {} HTTP/1.0\r\nHost: {host}:{port}\r\nContent-Length: 0\r\n\r\n",
        url.path()
    );
    if s.write_all(req.as_bytes()).is_ok() {
        // Reading to the end waits until chromium has quit.
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
}

/// Process ids whose command line mentions `dir` (the processes of one browser).
pub fn processes_mentioning(dir: &Path) -> Vec<u32> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(PathBuf::from(format!("/proc/{pid}/cmdline")))
                .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

fn push_line(log: &Mutex<String>, line: &str) {
    if let Ok(mut log) = log.lock() {
        log.push_str(line);
        log.push('\n');
    }
}

/// The port in chromedriver's "ChromeDriver was started successfully on port 40223." line.
fn started_port(line: &str) -> Option<u16> {
    let rest = line.split("started successfully on port ").nth(1)?;
    rest.trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()
}

/// WebDriver wraps every answer in `{"value": ...}`; errors carry `error` and `message`.
async fn unwrap_value(resp: reqwest::Response) -> Result<Value, String> {
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| format!("HTTP {status} with a body that is not JSON: {e}"))?;
    let value = body.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!(
            "HTTP {status}: {}: {}",
            value["error"].as_str().unwrap_or("unknown error"),
            value["message"].as_str().unwrap_or_default()
        ))
    }
}
