//! The loopback listener's sockets: binding 127.0.0.1 (and ::1 on the same port for a
//! `localhost` redirect), one tiny_http server per address, their requests fed into one
//! channel.

use super::error::ListenerError;
use parking_lot::Mutex;
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;
use tiny_http::{Request, Server};

/// The OS error for "this machine has no IPv6": errno EAFNOSUPPORT on Unix; Winsock's own
/// WSAEAFNOSUPPORT on Windows, whose socket errors are not errno values.
#[cfg(unix)]
const NO_IPV6: i32 = libc::EAFNOSUPPORT;
#[cfg(windows)]
const NO_IPV6: i32 = 10047;

/// How many random ports a `localhost` listener tries before giving up when ::1 has the
/// port 127.0.0.1 was given already taken.
const PORT_ATTEMPTS: usize = 8;

/// The listener's sockets: one tiny_http server per bound address, their requests fed
/// into one channel by a thread each. Dropping the last handle unblocks those threads, so
/// the servers close and the port is released.
pub(super) struct Sockets {
    servers: Vec<Arc<Server>>,
    rx: Mutex<Receiver<Option<Request>>>,
    // `None` in the channel wakes the receiver (cancel, or the held response was sent).
    tx: Sender<Option<Request>>,
}

impl Sockets {
    pub(super) fn new(servers: Vec<Server>) -> Arc<Sockets> {
        let (tx, rx) = mpsc::channel();
        let servers: Vec<Arc<Server>> = servers.into_iter().map(Arc::new).collect();
        for server in &servers {
            let (server, tx) = (server.clone(), tx.clone());
            std::thread::spawn(move || {
                // `recv` fails once `unblock` is called (on drop): then the thread ends and
                // lets go of the server.
                while let Ok(request) = server.recv() {
                    if tx.send(Some(request)).is_err() {
                        break;
                    }
                }
            });
        }
        Arc::new(Sockets {
            servers,
            rx: Mutex::new(rx),
            tx,
        })
    }

    /// The next request within `timeout`; `None` on timeout or a wake-up.
    pub(super) fn recv_timeout(&self, timeout: Duration) -> Option<Request> {
        // One receiver at a time by construction (the wait loop, then the replay thread).
        let rx = self.rx.lock();
        // A timeout is `None`; the channel cannot disconnect while `self.tx` lives.
        rx.recv_timeout(timeout).unwrap_or_default()
    }

    pub(super) fn wake(&self) {
        // The receiver lives in `self`: sending cannot fail while we exist.
        let _ = self.tx.send(None);
    }
}

impl Drop for Sockets {
    fn drop(&mut self) {
        for server in &self.servers {
            server.unblock();
        }
    }
}

/// Binds 127.0.0.1 on `port` (0: a free one), and with `also_v6` ::1 on the same port.
pub(super) fn bind_loopback(port: u16, also_v6: bool) -> Result<Vec<TcpListener>, ListenerError> {
    let in_use = |e: std::io::Error, p: u16| {
        if e.kind() == std::io::ErrorKind::AddrInUse && p != 0 {
            ListenerError::PortInUse { port: p }
        } else {
            ListenerError::Io { port: p, source: e }
        }
    };
    for _ in 0..PORT_ATTEMPTS {
        let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|e| in_use(e, port))?;
        if !also_v6 {
            return Ok(vec![v4]);
        }
        let p = v4
            .local_addr()
            .map_err(|e| ListenerError::Io { port, source: e })?
            .port();
        match TcpListener::bind((Ipv6Addr::LOCALHOST, p)) {
            Ok(v6) => return Ok(vec![v4, v6]),
            // Another program has this port on ::1: try another free port.
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && port == 0 => continue,
            // No IPv6 loopback on this machine: nobody can listen on ::1, so 127.0.0.1
            // alone receives every callback.
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrNotAvailable
                    || e.raw_os_error() == Some(NO_IPV6) =>
            {
                return Ok(vec![v4])
            }
            Err(e) => return Err(in_use(e, p)),
        }
    }
    Err(ListenerError::Io {
        port,
        source: std::io::Error::other(format!(
            "{PORT_ATTEMPTS} free ports on 127.0.0.1 were all taken on ::1"
        )),
    })
}
