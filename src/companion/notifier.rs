//! Notifiers: where [`Notice`]s go. A trait, a desktop implementation (notify-rust: over
//! D-Bus on Linux, with a "Re-authorize" action where the server supports actions;
//! Notification Center on macOS and toasts on Windows, whose buttons notify-rust 4.18+
//! reports as actions: written, not yet run there) and a terminal implementation for
//! `tether watch`.
//!
//! A click on an action is reported back through the [`ActionSender`] the watcher hands
//! in, so the notifier never starts work itself.

use super::notice::{Action, Notice, Urgency, REAUTH_ACTION_KEY, REAUTH_ACTION_LABEL};
use parking_lot::Mutex;
use std::io::Write;
use tokio::sync::mpsc;

/// Why a notification could not be shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// No notification server (no session bus, no daemon).
    #[error("desktop notifications are not available: {0}; is a notification daemon running on the session bus?")]
    Unavailable(String),
    /// The server or the terminal refused this notification.
    #[error("cannot show the notification: {0}")]
    Failed(String),
}

/// Sends action clicks back to the watcher.
#[derive(Debug, Clone)]
pub struct ActionSender(mpsc::UnboundedSender<Action>);

impl ActionSender {
    /// Wraps the sending half of the watcher's action channel.
    pub fn new(tx: mpsc::UnboundedSender<Action>) -> ActionSender {
        ActionSender(tx)
    }

    /// A new channel: the sender for notifiers, the receiver for whoever handles clicks.
    pub fn channel() -> (ActionSender, mpsc::UnboundedReceiver<Action>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (ActionSender(tx), rx)
    }

    /// Reports a click; false when nobody listens any more.
    pub fn send(&self, action: Action) -> bool {
        self.0.send(action).is_ok()
    }
}

/// Shows notices to the owner. Called from a blocking thread: implementations may block
/// briefly (a D-Bus call) but must not wait for the owner.
pub trait Notifier: Send + Sync {
    /// Shows `notice`; reports a click on its action through `actions`.
    fn notify(&self, notice: &Notice, actions: &ActionSender) -> Result<(), NotifyError>;
}

impl<N: Notifier + ?Sized> Notifier for std::sync::Arc<N> {
    fn notify(&self, notice: &Notice, actions: &ActionSender) -> Result<(), NotifyError> {
        (**self).notify(notice, actions)
    }
}

/// Prints notices as lines on a terminal (or any writer).
pub struct TerminalNotifier {
    out: Mutex<Box<dyn Write + Send>>,
    color: bool,
    /// What starts each line: on a terminal the current line is cleared first, so a
    /// countdown `tether watch` draws there is replaced rather than run into.
    line_start: &'static str,
}

impl TerminalNotifier {
    /// Writes to stdout, coloured when stdout is a terminal.
    pub fn stdout() -> TerminalNotifier {
        use std::io::IsTerminal;
        let terminal = std::io::stdout().is_terminal();
        TerminalNotifier {
            color: terminal,
            out: Mutex::new(Box::new(std::io::stdout())),
            line_start: super::terminal::line_start(terminal),
        }
    }

    /// Writes to `out`.
    pub fn new(out: Box<dyn Write + Send>, color: bool) -> TerminalNotifier {
        TerminalNotifier {
            out: Mutex::new(out),
            color,
            line_start: "",
        }
    }
}

impl Notifier for TerminalNotifier {
    fn notify(&self, notice: &Notice, _actions: &ActionSender) -> Result<(), NotifyError> {
        let time = chrono::Local::now().format("%H:%M:%S");
        // The notice carries daemon text: no escape sequence of its own reaches the terminal.
        let line = super::terminal::safe(&notice.line()).into_owned();
        let text = match (self.color, notice.urgency) {
            (true, Urgency::Critical) => {
                format!("{}{time} \x1b[1;31m{line}\x1b[0m\n", self.line_start)
            }
            _ => format!("{}{time} {line}\n", self.line_start),
        };
        // Poisoning only means another line failed half-way; keep printing.
        let mut out = self.out.lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| NotifyError::Failed(e.to_string()))
    }
}

/// Desktop notifications through the freedesktop notification server.
#[derive(Debug)]
pub struct DesktopNotifier {
    actions: bool,
    /// The server reads the body as markup (freedesktop `body-markup`).
    markup: bool,
    app_name: String,
}

impl DesktopNotifier {
    /// Connects to the notification server and asks for its capabilities.
    pub fn new() -> Result<DesktopNotifier, NotifyError> {
        let caps = capabilities()?;
        Ok(DesktopNotifier {
            actions: caps.iter().any(|c| c == "actions"),
            markup: caps.iter().any(|c| c == "body-markup"),
            app_name: "tether".into(),
        })
    }

    /// Whether the server shows action buttons.
    pub fn supports_actions(&self) -> bool {
        self.actions
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
fn capabilities() -> Result<Vec<String>, NotifyError> {
    notify_rust::get_capabilities().map_err(|e| NotifyError::Unavailable(e.to_string()))
}

/// macOS and Windows always show notify-rust's actions as buttons and report the click
/// to `wait_for_action`; there is no server to ask. On macOS the click is delivered
/// through the main run loop, which the tray app runs (`tether watch` in a terminal does
/// not, so there a click may go unreported; its terminal line names the command anyway).
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn capabilities() -> Result<Vec<String>, NotifyError> {
    Ok(vec!["actions".into()])
}

impl Notifier for DesktopNotifier {
    fn notify(&self, notice: &Notice, actions: &ActionSender) -> Result<(), NotifyError> {
        let mut n = notify_rust::Notification::new();
        let body = body_text(&notice.body, self.markup);
        n.appname(&self.app_name)
            .summary(&notice.summary)
            .body(&body)
            .icon("dialog-password");
        // Windows maps Critical to a toast that stays until dismissed; macOS has no
        // urgency in notify-rust's default backend.
        #[cfg(any(all(unix, not(target_os = "macos")), windows))]
        {
            n.urgency(match notice.urgency {
                Urgency::Critical => notify_rust::Urgency::Critical,
                Urgency::Normal => notify_rust::Urgency::Normal,
            });
        }
        let action = notice.action.clone().filter(|_| self.actions);
        if action.is_some() {
            n.action(REAUTH_ACTION_KEY, REAUTH_ACTION_LABEL);
        }
        if notice.urgency == Urgency::Critical {
            // A dead credential stays on screen until the owner acts or dismisses it.
            n.timeout(notify_rust::Timeout::Never);
        }
        // macOS: `show` only prepares; the notification is sent by `wait_for_action` (or
        // when the handle is dropped), so the waiting thread below is what shows it.
        let handle = n.show().map_err(|e| NotifyError::Failed(e.to_string()))?;
        if let Some(action) = action {
            let actions = actions.clone();
            // wait_for_action blocks until a click or close: give it its own thread.
            let spawned = std::thread::Builder::new()
                .name("tether-notify-action".into())
                .spawn(move || {
                    handle.wait_for_action(|key| {
                        if key == REAUTH_ACTION_KEY || key == "default" {
                            actions.send(action);
                        }
                    })
                });
            if let Err(e) = spawned {
                return Err(NotifyError::Failed(format!(
                    "cannot wait for the notification's action: {e}"
                )));
            }
        }
        Ok(())
    }
}

/// The body as the server reads it. A freedesktop server with `body-markup` interprets a
/// small HTML subset (`<b>`, `<a href>`, `<img>`) and entities: a body carries text from
/// the daemon, its agent and the provider (an error description, a challenge message), so
/// it is escaped and shows exactly the words sent, never a link or an image they smuggle
/// in. A server without it shows the text as it is (escaping would show `&amp;`). The
/// summary is plain text by the specification.
pub(crate) fn body_text(body: &str, markup: bool) -> String {
    if !markup {
        return body.to_owned();
    }
    // The markup is a small HTML subset: HTML's escaping (shared with the browser page).
    crate::oauth::page::escape(body)
}

/// Desktop notifications when a notification server answers, else lines on stderr (the
/// tray app's log), with the reason logged once.
pub fn desktop_or_log() -> std::sync::Arc<dyn Notifier> {
    match DesktopNotifier::new() {
        Ok(n) => std::sync::Arc::new(n),
        Err(e) => {
            tracing::warn!("{e}; notifications go to the log instead");
            std::sync::Arc::new(TerminalNotifier::new(Box::new(std::io::stderr()), false))
        }
    }
}

/// Drops notifications while the owner's [`Pause`](super::policy::Pause) is in force;
/// the tray still shows every state.
pub struct Pausable {
    inner: std::sync::Arc<dyn Notifier>,
    pause: super::policy::Pause,
}

impl Pausable {
    /// `inner`, silenced by `pause`.
    pub fn new(inner: std::sync::Arc<dyn Notifier>, pause: super::policy::Pause) -> Pausable {
        Pausable { inner, pause }
    }
}

impl Notifier for Pausable {
    fn notify(&self, notice: &Notice, actions: &ActionSender) -> Result<(), NotifyError> {
        if self.pause.silences(chrono::Utc::now()) {
            tracing::info!("notification paused: {}", notice.summary);
            return Ok(());
        }
        self.inner.notify(notice, actions)
    }
}

/// Every notice to `main` (the terminal), and also to `extra` (the desktop) when there is
/// one. The extra's failure is logged, not returned: the main line still tells the story.
pub struct Tee {
    main: Box<dyn Notifier>,
    extra: Option<Box<dyn Notifier>>,
}

impl Tee {
    /// `main`, plus `extra` when there is one.
    pub fn new<E: Notifier + 'static>(main: impl Notifier + 'static, extra: Option<E>) -> Tee {
        Tee {
            main: Box::new(main),
            extra: extra.map(|e| Box::new(e) as Box<dyn Notifier>),
        }
    }
}

impl Notifier for Tee {
    fn notify(&self, notice: &Notice, actions: &ActionSender) -> Result<(), NotifyError> {
        if let Some(extra) = &self.extra {
            if let Err(e) = extra.notify(notice, actions) {
                tracing::warn!("{e}; the notice is still printed here");
            }
        }
        self.main.notify(notice, actions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::companion::notice::NoticeKind;
    use crate::companion::policy::Pause;
    use std::sync::Arc;

    #[derive(Default)]
    struct Shown(Mutex<Vec<String>>);
    impl Notifier for Shown {
        fn notify(&self, notice: &Notice, _: &ActionSender) -> Result<(), NotifyError> {
            self.0.lock().push(notice.summary.clone());
            Ok(())
        }
    }

    struct Refuses;
    impl Notifier for Refuses {
        fn notify(&self, _: &Notice, _: &ActionSender) -> Result<(), NotifyError> {
            Err(NotifyError::Unavailable("no notification server".into()))
        }
    }

    fn notice() -> Notice {
        Notice::contact(
            NoticeKind::Unreachable,
            "studio",
            chrono::Local::now(),
            "connection refused",
            chrono::Local::now(),
        )
    }

    #[test]
    fn a_body_is_escaped_for_a_server_that_reads_markup_and_left_alone_otherwise() {
        let hostile =
            r#"Open <a href="https://evil.example">accounts.google.com</a> & <b>now</b>'s"#;
        assert_eq!(
            body_text(hostile, true),
            "Open &lt;a href=&quot;https://evil.example&quot;&gt;accounts.google.com&lt;/a&gt; &amp; &lt;b&gt;now&lt;/b&gt;&#39;s"
        );
        assert_eq!(body_text(hostile, false), hostile);
        assert_eq!(body_text("plain words", true), "plain words");
    }

    #[test]
    fn a_tee_shows_both_and_a_refusing_extra_does_not_fail_the_notice() {
        let (actions, _rx) = ActionSender::channel();
        let (main, extra) = (Arc::new(Shown::default()), Arc::new(Shown::default()));
        Tee::new(main.clone(), Some(extra.clone()))
            .notify(&notice(), &actions)
            .unwrap();
        assert_eq!((main.0.lock().len(), extra.0.lock().len()), (1, 1));

        let main = Arc::new(Shown::default());
        Tee::new(main.clone(), Some(Refuses))
            .notify(&notice(), &actions)
            .unwrap();
        assert_eq!(main.0.lock().len(), 1);

        let main = Arc::new(Shown::default());
        Tee::new(main.clone(), None::<Refuses>)
            .notify(&notice(), &actions)
            .unwrap();
        assert_eq!(main.0.lock().len(), 1);
    }

    #[test]
    fn a_paused_notifier_drops_notices_until_the_owner_resumes() {
        let shown = Arc::new(Shown::default());
        let pause = Pause::default();
        let n = Pausable::new(shown.clone(), pause.clone());
        let (actions, _rx) = ActionSender::channel();
        let notice = Notice::contact(
            NoticeKind::Unreachable,
            "studio",
            chrono::Local::now(),
            "connection refused",
            chrono::Local::now(),
        );
        pause.start(chrono::Utc::now());
        n.notify(&notice, &actions).unwrap();
        assert!(shown.0.lock().is_empty());
        pause.resume();
        n.notify(&notice, &actions).unwrap();
        assert_eq!(shown.0.lock().len(), 1);
    }
}
