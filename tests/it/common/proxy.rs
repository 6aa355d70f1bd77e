//! A TCP proxy on loopback that can cut every connection: the "server dies
//! mid-transfer" of the remote tests, without losing moto's in-memory
//! state. Each [`Proxy`] forwards 127.0.0.1:`port` to a target port,
//! counts the bytes in each direction, and, once a limit is passed or on
//! command, shuts every connection and refuses new ones (the listener is
//! closed), as a server that went away would.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct State {
    /// Bytes from clients to the server.
    up: AtomicU64,
    /// Bytes from the server to clients.
    down: AtomicU64,
    /// Cut when `up` passes this.
    up_limit: AtomicU64,
    /// Cut when `down` passes this.
    down_limit: AtomicU64,
    cut: AtomicBool,
    streams: Mutex<Vec<TcpStream>>,
}

impl State {
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// A running proxy; it stops accepting when dropped.
pub struct Proxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    state: Arc<State>,
}

impl Proxy {
    /// Forwards a free port of 127.0.0.1 to `target` on 127.0.0.1.
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(State {
            up_limit: AtomicU64::new(u64::MAX),
            down_limit: AtomicU64::new(u64::MAX),
            ..State::default()
        });
        let shared = Arc::clone(&state);
        std::thread::spawn(move || accept(listener, target, &shared));
        Proxy { port, state }
    }

    /// The endpoint URL for `--endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Cuts everything once `bytes` more have gone to the server.
    pub fn cut_after_up(&self, bytes: u64) {
        let now = self.state.up.load(Ordering::SeqCst);
        self.state.up_limit.store(now + bytes, Ordering::SeqCst);
    }

    /// Cuts everything once `bytes` more have come from the server.
    pub fn cut_after_down(&self, bytes: u64) {
        let now = self.state.down.load(Ordering::SeqCst);
        self.state.down_limit.store(now + bytes, Ordering::SeqCst);
    }

    /// Whether it has cut.
    pub fn is_cut(&self) -> bool {
        self.state.cut.load(Ordering::SeqCst)
    }

    /// Bytes forwarded to the server so far.
    pub fn up(&self) -> u64 {
        self.state.up.load(Ordering::SeqCst)
    }

    /// Bytes forwarded from the server so far.
    pub fn down(&self) -> u64 {
        self.state.down.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.cut();
    }
}

/// Accepts until cut; then the listener is dropped, so connecting is
/// refused.
fn accept(listener: TcpListener, target: u16, state: &Arc<State>) {
    while !state.cut.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(_) => return,
        };
        client.set_nonblocking(false).unwrap();
        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
            continue;
        };
        {
            let mut streams = state.streams.lock().unwrap();
            streams.push(client.try_clone().unwrap());
            streams.push(server.try_clone().unwrap());
        }
        for (from, to, up) in [
            (
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                true,
            ),
            (server, client, false),
        ] {
            let state = Arc::clone(state);
            std::thread::spawn(move || pump(from, to, up, &state));
        }
    }
}

/// Copies `from` to `to`, counting, until either closes or the limit of
/// its direction is passed (then it cuts everything).
fn pump(mut from: TcpStream, mut to: TcpStream, up: bool, state: &State) {
    let (count, limit) = if up {
        (&state.up, &state.up_limit)
    } else {
        (&state.down, &state.down_limit)
    };
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if state.cut.load(Ordering::SeqCst) {
            break;
        }
        let total = count.fetch_add(read as u64, Ordering::SeqCst) + read as u64;
        if total > limit.load(Ordering::SeqCst) {
            state.cut();
            break;
        }
        if to.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
