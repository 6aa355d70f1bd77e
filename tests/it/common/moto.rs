//! A real S3 server on loopback: moto's (`python -m moto.server`), from the
//! test venv's Python (`MIGSNAP_TEST_PYTHON`, pinned in
//! `scripts/requirements-test.txt`).
//!
//! Each [`MotoServer`] listens on a free port of 127.0.0.1 and is killed when
//! dropped. moto keeps everything in memory: a restarted server is empty.
//! Without `MIGSNAP_TEST_PYTHON` the S3 half of a test is skipped, and says
//! so ([`python_or_skip`]).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::alembic::PYTHON_VAR;

/// Credentials every S3 test uses; moto accepts any unless auth is on.
pub const ACCESS_KEY: &str = "migsnap-test";
/// See [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "migsnap-test-secret";

/// The header the fixture's own plain-HTTP requests carry. With auth off,
/// moto reads the access key from it but never checks the signature; without
/// one, a request is anonymous, and moto refuses anonymous reads of objects.
const AUTHORIZATION: &str = "Authorization: AWS4-HMAC-SHA256 Credential=migsnap-test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\n";

/// The test venv's Python, or `None` (and a printed reason) when
/// `MIGSNAP_TEST_PYTHON` is unset.
pub fn python_or_skip() -> Option<PathBuf> {
    match std::env::var_os(PYTHON_VAR).filter(|p| !p.is_empty()) {
        Some(python) => Some(PathBuf::from(python)),
        None => {
            super::skip(&format!(
                "the S3 half needs moto: set {PYTHON_VAR} (bash scripts/test-venv.sh && export {PYTHON_VAR}=$PWD/.venv/bin/python)"
            ));
            None
        }
    }
}

/// A running moto server.
pub struct MotoServer {
    child: Option<Child>,
    python: PathBuf,
    auth: bool,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl MotoServer {
    /// Starts a server on a free port and waits until it answers. With
    /// `auth`, it checks credentials (and, having no IAM users, refuses all).
    pub fn start(python: &Path, auth: bool) -> MotoServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut server = MotoServer {
            child: None,
            python: python.to_path_buf(),
            auth,
            port,
        };
        server.restart();
        server
    }

    /// Starts the server (again) on the same port; it comes back empty.
    pub fn restart(&mut self) {
        self.kill();
        let mut command = Command::new(&self.python);
        command
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.auth {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        }
        self.child = Some(command.spawn().expect("start moto.server"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.request("GET", "/").is_none() {
            assert!(
                Instant::now() < deadline,
                "moto.server did not answer on port {} within 60 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The endpoint URL for `--endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates bucket `name` (the server has auth off: see [`AUTHORIZATION`]).
    pub fn create_bucket(&self, name: &str) {
        let status = self.request("PUT", &format!("/{name}"));
        assert_eq!(status.as_deref(), Some("200"), "create bucket {name}");
    }

    /// Keys under `prefix` in `bucket`, for tests that look
    /// at the remote from outside.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let body = self
            .get(&format!("/{bucket}?list-type=2&prefix={prefix}"))
            .unwrap_or_default();
        body.split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_owned()))
            .collect()
    }

    /// The status code of one plain HTTP request, or `None` when the server
    /// does not answer.
    fn request(&self, method: &str, path: &str) -> Option<String> {
        let response = self.exchange(method, path, &[])?;
        let status = response.split(' ').nth(1)?;
        Some(status.to_owned())
    }

    /// The body of a GET, or `None`.
    fn get(&self, path: &str) -> Option<String> {
        let response = self.exchange("GET", path, &[])?;
        Some(response.split_once("\r\n\r\n")?.1.to_owned())
    }

    /// Replaces the object at `key` with `bytes`.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let response = self
            .exchange("PUT", &format!("/{bucket}/{key}"), bytes)
            .expect("moto answers");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }

    /// Deletes the object at `key`.
    pub fn delete(&self, bucket: &str, key: &str) {
        let response = self
            .exchange("DELETE", &format!("/{bucket}/{key}"), &[])
            .expect("moto answers");
        assert!(response.starts_with("HTTP/1.1 204"), "{response}");
    }

    /// The bytes of the object at `key`.
    pub fn object(&self, bucket: &str, key: &str) -> Vec<u8> {
        let mut stream = self.connect().expect("moto answers");
        let request = format!(
            "GET /{bucket}/{key} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{AUTHORIZATION}Connection: close\r\n\r\n",
            self.port
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("headers end");
        response[split + 4..].to_vec()
    }

    fn connect(&self) -> Option<TcpStream> {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        Some(stream)
    }

    fn exchange(&self, method: &str, path: &str, body: &[u8]) -> Option<String> {
        let mut stream = self.connect()?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n{AUTHORIZATION}Connection: close\r\n\r\n",
            self.port,
            body.len()
        );
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body).ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).ok()?;
        let text = String::from_utf8_lossy(&response).into_owned();
        text.starts_with("HTTP/").then_some(text)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.kill();
    }
}
