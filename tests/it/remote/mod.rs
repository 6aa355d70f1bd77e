//! Remotes: `remote`, `push`, `fetch` and `clone` with the real binary, real
//! SQLite files, and two real remotes: moto's S3 server on loopback (one per
//! test, killed when the test ends) and a plain directory (`file://`).
//! Every scenario runs against both; the S3 half is skipped, and says so,
//! when `MIGSNAP_TEST_PYTHON` is unset. Encryption (`crypt`), `fsck
//! --remote` (`fsck`), `gc --remote` and its locks (`gc`), `check --push`
//! (`check`) and transfers cut off by a proxy (`cut`) have modules of their
//! own, sharing the helpers here.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::moto::{ACCESS_KEY, MotoServer, SECRET_KEY, python_or_skip};
use crate::common::shim::Shim;
use crate::common::{
    Journal, Output, TestEnv, create_db, dump, exec, exit, file_hash, run_command,
};

/// Runs each scenario `name(&Remote)` against both kinds of remote, as the
/// tests `name::s3` (skipped, and saying so, without moto) and `name::file`.
macro_rules! on_both_remotes {
    ($name:ident) => {
        mod $name {
            #[test]
            fn s3() {
                if let Some(remote) = super::Remote::s3() {
                    super::$name(&remote);
                }
            }

            #[test]
            fn file() {
                super::$name(&super::Remote::file());
            }
        }
    };
}

mod check;
mod crypt;
mod cut;
mod fsck;
mod gc;

const BUCKET: &str = "backups";

/// A remote under test: a bucket on its own moto server, or a directory.
struct Remote {
    url: String,
    server: Option<MotoServer>,
    /// The directory of a file remote (kept alive with the test).
    dir: Option<tempfile::TempDir>,
}

impl Remote {
    /// A fresh bucket on a fresh server, or `None` when S3 tests are skipped.
    fn s3() -> Option<Remote> {
        let python = python_or_skip()?;
        let server = MotoServer::start(&python, false);
        server.create_bucket(BUCKET);
        Some(Remote {
            url: format!("s3://{BUCKET}/team/webui"),
            server: Some(server),
            dir: None,
        })
    }

    /// A fresh directory.
    fn file() -> Remote {
        let dir = tempfile::Builder::new()
            .prefix("migsnap-remote-")
            .tempdir()
            .expect("temp dir");
        Remote {
            url: format!("file://{}", dir.path().display()),
            server: None,
            dir: Some(dir),
        }
    }

    /// `--endpoint URL` for an S3 remote.
    fn endpoint_args(&self) -> Vec<String> {
        match &self.server {
            Some(server) => vec!["--endpoint".into(), server.endpoint()],
            None => Vec::new(),
        }
    }

    /// Every key of the remote under `prefix` (`packs/`, `refs/`).
    fn keys(&self, prefix: &str) -> Vec<String> {
        match (&self.server, &self.dir) {
            (Some(server), _) => server
                .keys(BUCKET, &format!("team/webui/{prefix}"))
                .into_iter()
                .map(|key| key.trim_start_matches("team/webui/").to_owned())
                .collect(),
            (None, Some(dir)) => {
                let mut keys = Vec::new();
                let top = dir.path().join(prefix);
                let mut stack = vec![top];
                while let Some(at) = stack.pop() {
                    for entry in std::fs::read_dir(&at).into_iter().flatten().flatten() {
                        if entry.path().is_dir() {
                            stack.push(entry.path());
                        } else {
                            let rel = entry.path().strip_prefix(dir.path()).unwrap().to_owned();
                            keys.push(rel.to_string_lossy().into_owned());
                        }
                    }
                }
                keys
            }
            (None, None) => unreachable!("BUG: a remote is S3 or a directory"),
        }
    }

    /// Flips one byte in the middle of the largest pack.
    fn flip_byte_in_a_pack(&self) -> String {
        let packs: Vec<String> = self
            .keys("packs/")
            .into_iter()
            .filter(|k| k.ends_with(".pack"))
            .collect();
        let (key, mut bytes) = packs
            .iter()
            .map(|key| (key.clone(), self.read(key)))
            .max_by_key(|(_, bytes)| bytes.len())
            .expect("a pack");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
        self.write(&key, &bytes);
        key
    }

    /// Writes `bytes` at `key`, from outside migsnap.
    fn write(&self, key: &str, bytes: &[u8]) {
        match (&self.server, &self.dir) {
            (Some(server), _) => server.put(BUCKET, &format!("team/webui/{key}"), bytes),
            (None, Some(dir)) => {
                let path = dir.path().join(key);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, bytes).unwrap();
            }
            (None, None) => unreachable!("BUG: a remote is S3 or a directory"),
        }
    }

    /// Deletes `key` from the remote.
    fn delete(&self, key: &str) {
        match (&self.server, &self.dir) {
            (Some(server), _) => server.delete(BUCKET, &format!("team/webui/{key}")),
            (None, Some(dir)) => std::fs::remove_file(dir.path().join(key)).unwrap(),
            (None, None) => unreachable!("BUG: a remote is S3 or a directory"),
        }
    }

    /// Every object of the remote, key and bytes.
    fn objects(&self) -> Vec<(String, Vec<u8>)> {
        let mut keys = self.keys("");
        keys.sort();
        keys.into_iter()
            .map(|key| {
                let bytes = self.read(&key);
                (key, bytes)
            })
            .collect()
    }

    fn read(&self, key: &str) -> Vec<u8> {
        match (&self.server, &self.dir) {
            (Some(server), _) => server.object(BUCKET, &format!("team/webui/{key}")),
            (None, Some(dir)) => std::fs::read(dir.path().join(key)).unwrap(),
            (None, None) => unreachable!("BUG: a remote is S3 or a directory"),
        }
    }
}

/// The environment every remote command gets: fixed test credentials and
/// no profile files or instance metadata from the machine.
const AWS_ENV: [(&str, &str); 6] = [
    ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
    ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
    ("AWS_REGION", "us-east-1"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
    ("AWS_CONFIG_FILE", "/nonexistent/config"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// The binary in `cwd` with the test credentials.
fn command(env: &TestEnv, cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = env.command(args);
    cmd.current_dir(cwd).env_remove("AWS_PROFILE");
    for (key, value) in AWS_ENV {
        cmd.env(key, value);
    }
    cmd
}

fn run(env: &TestEnv, cwd: &Path, args: &[&str]) -> Output {
    run_command(command(env, cwd, args), args)
}

/// Runs the binary and fails the test if it has not finished after two
/// minutes: a remote that cannot be reached must fail, not hang.
fn run_bounded(env: &TestEnv, cwd: &Path, args: &[&str]) -> Output {
    let mut child = command(env, cwd, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn migsnap");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "`migsnap {}` did not finish within two minutes",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        status: out.status.code().unwrap_or(-1),
        command: format!("migsnap {}", args.join(" ")),
    }
}

/// A project with a store tracking `app.db` (`rows` rows of 200 bytes),
/// one snapshot, and `remote` added as `origin`.
fn project(remote: &Remote, rows: usize) -> TestEnv {
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, rows);
    env.run(&["track", "app", "app.db"]).assert_success();
    env.snapshot(&["app", "-m", "first"]);
    add_origin(&env, env.path(), remote);
    env
}

fn add_origin(env: &TestEnv, cwd: &Path, remote: &Remote) {
    add_remote(env, cwd, remote, "origin", &[]).assert_success();
}

/// `remote add NAME URL [--endpoint …] EXTRA…` in `cwd`.
fn add_remote(env: &TestEnv, cwd: &Path, remote: &Remote, name: &str, extra: &[&str]) -> Output {
    let mut args = vec!["remote", "add", name, remote.url.as_str()];
    let endpoint = remote.endpoint_args();
    args.extend(endpoint.iter().map(String::as_str));
    args.extend_from_slice(extra);
    run(env, cwd, &args)
}

/// `push --format json` in `cwd`, which must succeed.
#[track_caller]
fn push(env: &TestEnv, cwd: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--format", "json", "push"];
    args.extend_from_slice(extra);
    run(env, cwd, &args).expect(exit::OK).json()
}

/// Clones `remote` into `dir` under `env`'s temp dir.
fn clone_args<'a>(remote: &'a Remote, dir: &'a str, endpoint: &'a [String]) -> Vec<&'a str> {
    let mut args = vec!["clone", remote.url.as_str(), dir];
    args.extend(endpoint.iter().map(String::as_str));
    args
}

#[track_caller]
fn clone(env: &TestEnv, remote: &Remote, dir: &str) -> PathBuf {
    let endpoint = remote.endpoint_args();
    run(env, env.path(), &clone_args(remote, dir, &endpoint)).expect(exit::OK);
    env.join(dir)
}

/// The id `rev` names in the store of `cwd`.
#[track_caller]
fn resolve(env: &TestEnv, cwd: &Path, rev: &str) -> String {
    let json = run(env, cwd, &["--format", "json", "show", rev])
        .expect(exit::OK)
        .json();
    json["id"].as_str().expect("id").to_owned()
}

#[track_caller]
fn fsck_clean(env: &TestEnv, cwd: &Path) {
    run(env, cwd, &["fsck", "--read-data"]).expect(exit::OK);
}

/// Snapshots database `app` of the project in `cwd`.
#[track_caller]
fn snapshot_in(env: &TestEnv, cwd: &Path, message: &str) {
    run(env, cwd, &["snapshot", "app", "-m", message]).expect(exit::OK);
}

// --- push, clone, restore ----------------------------------------------

/// The disaster-recovery path: push, clone on a "new machine", and get the
/// database back byte for byte with checkout, and with restore.
fn push_then_clone_restores_identically(remote: &Remote) {
    let env = project(remote, 2000);
    let pushed = push(&env, env.path(), &[]);
    assert_eq!(pushed["refs"][0]["name"], "heads/app");
    assert_eq!(pushed["refs"][0]["outcome"], "created");
    assert!(pushed["bytes"].as_u64().unwrap() > 0);

    let machine = TestEnv::new();
    let copy = clone(&machine, remote, "copy");
    fsck_clean(&machine, &copy);
    let head = resolve(&env, env.path(), "app");
    assert_eq!(resolve(&machine, &copy, "heads/app"), head);
    assert_eq!(resolve(&machine, &copy, "origin/app"), head);

    run(&machine, &copy, &["checkout", "heads/app", "-o", "app.db"]).expect(exit::OK);
    assert_eq!(
        file_hash(&copy.join("app.db")),
        file_hash(&env.join("app.db"))
    );

    // restore into a damaged copy of the database on the new machine.
    exec(&copy.join("app.db"), "DELETE FROM items WHERE id % 3 = 0;");
    run(&machine, &copy, &["restore", "heads/app", "app.db"]).expect(exit::OK);
    assert_eq!(dump(&copy.join("app.db")), dump(&env.join("app.db")));

    // The remote's history reads as the local one: log from origin/app.
    let log = run(&machine, &copy, &["--format", "json", "log", "origin/app"])
        .expect(exit::OK)
        .json();
    assert_eq!(log["snapshots"][0]["id"], head.as_str());

    // The clone kept the remote's blocks as loose packs; gc packs them,
    // and the snapshot checks out the same after.
    let gc = run(&machine, &copy, &["--format", "json", "gc"])
        .expect(exit::OK)
        .json();
    assert!(gc["packed"]["loose_packs"].as_u64().unwrap() > 0, "{gc}");
    fsck_clean(&machine, &copy);
    run(&machine, &copy, &["checkout", &head, "-o", "again.db"]).expect(exit::OK);
    assert_eq!(
        file_hash(&copy.join("again.db")),
        file_hash(&env.join("app.db"))
    );
}

on_both_remotes!(push_then_clone_restores_identically);

/// Disaster recovery in one command: `clone --checkout heads/app -o FILE`
/// writes the pages as they download, reads none from the store after, and
/// the file is the database byte for byte. Another revision (a hash prefix,
/// known only once the clone is in) is written after the download; an
/// output that exists is refused before anything is cloned; a revision
/// that names nothing leaves the finished clone and no file.
fn clone_checkout_writes_the_database_as_it_downloads(remote: &Remote) {
    let env = project(remote, 3000);
    push(&env, env.path(), &[]);
    let head = resolve(&env, env.path(), "app");
    let original = file_hash(&env.join("app.db"));
    let endpoint = remote.endpoint_args();
    let machine = TestEnv::new();
    let fused = |dir: &str, rev: &str, out: &str| {
        let mut args = vec!["--format", "json"];
        args.extend(clone_args(remote, dir, &endpoint));
        args.extend(["--checkout", rev, "-o", out]);
        run(&machine, machine.path(), &args)
    };

    // A database's name stands for its head, as in `checkout`.
    let cloned = fused("copy", "app", "app.db").expect(exit::OK).json();
    assert_eq!(file_hash(&machine.join("app.db")), original);
    let checkout = &cloned["checkout"];
    assert_eq!(checkout["snapshot"], head.as_str(), "{cloned}");
    assert_eq!(checkout["verified"], true);
    let delta = &checkout["rebuild"]["delta"];
    assert_eq!(delta["pages_fetched"], 0, "{cloned}");
    assert!(delta["pages_reused"].as_u64().unwrap() > 100, "{cloned}");
    fsck_clean(&machine, &machine.join("copy"));
    // The clone tracks no database; its name still names the head.
    run(
        &machine,
        &machine.join("copy"),
        &["checkout", "app", "-o", "again.db"],
    )
    .expect(exit::OK);
    assert_eq!(file_hash(&machine.join("copy/again.db")), original);
    assert_eq!(
        machine.restore_temps(machine.path()),
        Vec::<String>::new(),
        "a temporary file was left"
    );

    // Into the clone's own directory, which the clone creates.
    let cloned = fused("copy5", "heads/app", "copy5/app.db")
        .expect(exit::OK)
        .json();
    assert_eq!(file_hash(&machine.join("copy5/app.db")), original);
    assert_eq!(cloned["checkout"]["rebuild"]["delta"]["pages_fetched"], 0);

    // A hash prefix: every page comes from the new store afterwards.
    let cloned = fused("copy2", &head[..12], "by-hash.db")
        .expect(exit::OK)
        .json();
    assert_eq!(file_hash(&machine.join("by-hash.db")), original);
    assert_eq!(cloned["checkout"]["rebuild"]["delta"]["pages_reused"], 0);

    // The output exists: refused before anything is cloned.
    let out = fused("copy3", "heads/app", "app.db");
    out.expect(exit::REFUSED);
    assert!(out.stderr.contains("app.db"), "{}", out.stderr);
    // clone has no --force: the hint names what to do instead.
    assert!(
        out.stderr.contains("another file with -o") && !out.stderr.contains("--force"),
        "{}",
        out.stderr
    );
    assert!(
        !machine.join("copy3").exists(),
        "a refused clone left its directory"
    );
    assert_eq!(file_hash(&machine.join("app.db")), original);

    // A revision that names nothing: the clone is done and stays.
    let out = fused("copy4", "heads/nothing", "nothing.db");
    out.expect(exit::INPUT);
    assert!(
        out.stderr.contains("but the checkout failed"),
        "{}",
        out.stderr
    );
    assert!(!machine.join("nothing.db").exists());
    fsck_clean(&machine, &machine.join("copy4"));
    assert_eq!(machine.restore_temps(machine.path()), Vec::<String>::new());
}

on_both_remotes!(clone_checkout_writes_the_database_as_it_downloads);

/// A page the download wrote wrong is not trusted. `write_shim.c` flips a
/// byte of the first run written into the checkout's temporary file, on
/// its way to the disk; the early check's digest then misses, the checkout
/// hashes every page, reads the wrong one from the new store, and the
/// output is byte-identical. Two pages whose ids share their first 8 bytes
/// (the tap's key) would be written at each other's index and mended the
/// same way.
fn clone_checkout_mends_a_page_written_wrong(remote: &Remote) {
    let env = project(remote, 3000);
    push(&env, env.path(), &[]);
    let original = file_hash(&env.join("app.db"));
    let shim = Shim::build("write_shim");
    let machine = TestEnv::new();
    let endpoint = remote.endpoint_args();
    let mut args = vec!["--format", "json"];
    args.extend(clone_args(remote, "copy", &endpoint));
    args.extend(["--checkout", "app", "-o", "app.db"]);
    let mut cmd = command(&machine, machine.path(), &args);
    cmd.env("LD_PRELOAD", shim.preload())
        .env("MIGSNAP_DAMAGE_WRITE_TO", ".migsnap-restore-");
    let cloned = run_command(cmd, &args).expect(exit::OK).json();
    assert_eq!(file_hash(&machine.join("app.db")), original);
    let delta = &cloned["checkout"]["rebuild"]["delta"];
    assert_eq!(delta["pages_fetched"], 1, "the damaged page: {cloned}");
    fsck_clean(&machine, &machine.join("copy"));
    assert_eq!(machine.restore_temps(machine.path()), Vec::<String>::new());
}

on_both_remotes!(clone_checkout_mends_a_page_written_wrong);

// --- incremental push ---------------------------------------------------

/// A second push after a small change sends two small packs (pages, then
/// the snapshot and its listing): only what the remote lacks.
fn incremental_push_sends_only_what_is_new(remote: &Remote) {
    let env = project(remote, 5000);
    let first = push(&env, env.path(), &[]);
    exec(
        &env.join("app.db"),
        "UPDATE items SET name = 'changed' WHERE id <= 3;",
    );
    env.snapshot(&["app", "-m", "second"]);
    let second = push(&env, env.path(), &[]);
    let (first_bytes, second_bytes) = (
        first["bytes"].as_u64().unwrap(),
        second["bytes"].as_u64().unwrap(),
    );
    eprintln!(
        "measured ({}): first push {first_bytes} bytes, incremental push {second_bytes} bytes",
        remote.url
    );
    // One pack of pages and schemas, one of the snapshot and its listing.
    assert_eq!(second["packs"], 2);
    assert_eq!(second["refs"][0]["outcome"], "fast-forward");
    assert!(
        second["objects_present"].as_u64().unwrap() > 100,
        "{second}"
    );
    assert!(
        second_bytes * 20 < first_bytes,
        "incremental push sent {second_bytes} bytes, the first {first_bytes}"
    );
    // Nothing new: nothing sent.
    let third = push(&env, env.path(), &[]);
    assert_eq!(third["bytes"], 0);
    assert_eq!(third["refs"][0]["outcome"], "up-to-date");
}

on_both_remotes!(incremental_push_sends_only_what_is_new);

// --- non-fast-forward and --force -------------------------------------

/// Two machines diverge: the second push is refused with git's hint, and
/// `--force` replaces the remote's ref.
fn non_fast_forward_is_refused_unless_forced(remote: &Remote) {
    let env = project(remote, 300);
    push(&env, env.path(), &[]);
    let machine = TestEnv::new();
    let copy = clone(&machine, remote, "copy");

    exec(&env.join("app.db"), "DELETE FROM items WHERE id = 1;");
    env.snapshot(&["app", "-m", "on the first machine"]);
    push(&env, env.path(), &[]);

    run(&machine, &copy, &["checkout", "heads/app", "-o", "app.db"]).expect(exit::OK);
    run(&machine, &copy, &["track", "app", "app.db"]).expect(exit::OK);
    exec(&copy.join("app.db"), "DELETE FROM items WHERE id = 2;");
    snapshot_in(&machine, &copy, "on the second machine");
    let refused = run(&machine, &copy, &["push"]);
    refused.expect_error(exit::REFUSED, &["heads/app", "not a fast-forward"]);
    assert!(refused.stderr.contains("hint: ") && refused.stderr.contains("fetch"));

    let forced = push(&machine, &copy, &["origin", "--force"]);
    assert_eq!(forced["refs"][0]["outcome"], "forced");
    let fetched = run(&env, env.path(), &["--format", "json", "fetch"])
        .expect(exit::OK)
        .json();
    assert_eq!(fetched["updates"][0]["movement"], "forced", "{fetched}");
    assert_eq!(
        resolve(&env, env.path(), "origin/app"),
        resolve(&machine, &copy, "app")
    );
}

on_both_remotes!(non_fast_forward_is_refused_unless_forced);

/// A remote ref put back to an older snapshot of its history (here its
/// old bytes written again, as whoever runs the bucket could) is fetched,
/// reported as rolled back, and warned about; a normal push afterwards
/// fetches as a fast-forward.
fn a_rolled_back_ref_is_reported(remote: &Remote) {
    let env = project(remote, 300);
    push(&env, env.path(), &[]);
    let machine = TestEnv::new();
    let copy = clone(&machine, remote, "copy");
    let first = resolve(&env, env.path(), "app");
    let key = remote.keys("refs/").pop().expect("one ref");
    let old_bytes = remote.read(&key);

    exec(&env.join("app.db"), "DELETE FROM items WHERE id = 1;");
    env.snapshot(&["app", "-m", "second"]);
    push(&env, env.path(), &[]);
    let fetched = run(&machine, &copy, &["--format", "json", "fetch"])
        .expect(exit::OK)
        .json();
    assert_eq!(
        fetched["updates"][0]["movement"], "fast-forward",
        "{fetched}"
    );
    assert_eq!(fetched["updates"][0]["ref"], "remotes/origin/heads/app");

    remote.write(&key, &old_bytes);
    let rolled = run(&machine, &copy, &["fetch"]);
    rolled.expect(exit::OK);
    assert!(rolled.stdout.contains("(rolled back)"), "{}", rolled.stdout);
    assert!(
        rolled.stderr.contains("warning:") && rolled.stderr.contains("moved back"),
        "{}",
        rolled.stderr
    );
    assert_eq!(resolve(&machine, &copy, "origin/app"), first);
    let again = run(&machine, &copy, &["--format", "json", "fetch"])
        .expect(exit::OK)
        .json();
    assert_eq!(again["updates"][0]["movement"], "unchanged", "{again}");
}

on_both_remotes!(a_rolled_back_ref_is_reported);

// --- two pushers at once ------------------------------------------------

/// Two stores push diverging snapshots of one ref at the same time: one
/// wins, the other is refused (as a non-fast-forward, or because the ref
/// changed under it), and the remote's ref is the winner's. Never both,
/// never neither, never a lost update.
fn concurrent_pushes_never_lose_a_ref(remote: &Remote) {
    let env = project(remote, 300);
    push(&env, env.path(), &[]);
    let machine = TestEnv::new();
    let copy = clone(&machine, remote, "copy");
    run(&machine, &copy, &["checkout", "heads/app", "-o", "app.db"]).expect(exit::OK);
    run(&machine, &copy, &["track", "app", "app.db"]).expect(exit::OK);

    exec(
        &env.join("app.db"),
        "UPDATE items SET name = 'a' WHERE id = 1;",
    );
    env.snapshot(&["app", "-m", "a"]);
    exec(
        &copy.join("app.db"),
        "UPDATE items SET name = 'b' WHERE id = 2;",
    );
    snapshot_in(&machine, &copy, "b");
    let spawn = |test_env: &TestEnv, cwd: &Path| {
        command(test_env, cwd, &["push"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(&env, env.path()), spawn(&machine, &copy));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let outcomes = [a.status.code(), b.status.code()];
    let (winner, loser) = match outcomes {
        [Some(0), Some(4)] => (resolve(&env, env.path(), "app"), &b),
        [Some(4), Some(0)] => (resolve(&machine, &copy, "app"), &a),
        _ => panic!(
            "expected one push to win and one to be refused, got {outcomes:?}\n{}\n{}",
            String::from_utf8_lossy(&a.stderr),
            String::from_utf8_lossy(&b.stderr)
        ),
    };
    let refusal = String::from_utf8_lossy(&loser.stderr);
    assert!(
        refusal.contains("not a fast-forward") || refusal.contains("changed on the remote"),
        "{refusal}"
    );
    // The remote's ref is the winner's: nothing was overwritten unseen.
    let fetched = run(&env, env.path(), &["--format", "json", "fetch"])
        .expect(exit::OK)
        .json();
    assert_eq!(fetched["refs"][0]["target"], winner.as_str());
    fsck_clean(&env, env.path());
}

on_both_remotes!(concurrent_pushes_never_lose_a_ref);

// --- retention -------------------------------------------------------------

/// Regression: a history whose oldest image retention gave up (and gc
/// collected) was pushed, then refused by clone as an incomplete history.
/// The forgotten mark travels with it.
fn forgotten_images_travel_as_forgotten(remote: &Remote) {
    let env = project(remote, 500);
    push(&env, env.path(), &[]);
    let keeper = TestEnv::new();
    let full = clone(&keeper, remote, "full");
    exec(&env.join("app.db"), "UPDATE items SET name = 'changed';");
    env.snapshot(&["app", "-m", "second"]);
    env.run(&["forget", "app", "--keep-last", "1"])
        .expect(exit::OK);
    env.run(&["gc", "--grace", "0s"]).expect(exit::OK);
    push(&env, env.path(), &[]);

    let forgotten = |test_env: &TestEnv, cwd: &Path| -> Vec<bool> {
        let log = run(test_env, cwd, &["--format", "json", "log", "origin/app"])
            .expect(exit::OK)
            .json();
        let snapshots = log["snapshots"].as_array().unwrap();
        snapshots
            .iter()
            .map(|s| s["data_forgotten"] == true)
            .collect()
    };
    let machine = TestEnv::new();
    let copy = clone(&machine, remote, "copy");
    fsck_clean(&machine, &copy);
    assert_eq!(forgotten(&machine, &copy), [false, true]);
    run(&machine, &copy, &["checkout", "heads/app", "-o", "app.db"]).expect(exit::OK);
    assert_eq!(
        file_hash(&copy.join("app.db")),
        file_hash(&env.join("app.db"))
    );
    // A store that has the old image keeps it: another store's retention
    // is not its own.
    run(&keeper, &full, &["fetch"]).expect(exit::OK);
    assert_eq!(forgotten(&keeper, &full), [false, false]);
    run(
        &keeper,
        &full,
        &["checkout", "origin/app~1", "-o", "old.db"],
    )
    .expect(exit::OK);
}

on_both_remotes!(forgotten_images_travel_as_forgotten);

// --- damage on the remote -------------------------------------------------

/// A flipped byte in a pack is found by clone and by fetch, which name the
/// pack and import nothing.
fn flipped_byte_is_found_and_nothing_imported(remote: &Remote) {
    let env = project(remote, 2000);
    push(&env, env.path(), &[]);
    let damaged = remote.flip_byte_in_a_pack();
    let pack = damaged
        .trim_start_matches("packs/")
        .trim_end_matches(".pack")
        .to_owned();

    let machine = TestEnv::new();
    let endpoint = remote.endpoint_args();
    run(
        &machine,
        machine.path(),
        &clone_args(remote, "copy", &endpoint),
    )
    .expect_error(exit::CORRUPT, &[&pack, "damaged"]);
    assert!(
        !machine.join("copy").exists(),
        "a failed clone leaves nothing"
    );

    let other = TestEnv::with_store();
    add_origin(&other, other.path(), remote);
    run(&other, other.path(), &["fetch"]).expect_error(exit::CORRUPT, &[&pack]);
    assert!(other.refs().is_empty(), "{:?}", other.refs());
    fsck_clean(&other, other.path());
}

on_both_remotes!(flipped_byte_is_found_and_nothing_imported);

// --- unusable remotes -------------------------------------------------------

/// Wrong credentials, a missing bucket and a closed port: each one line
/// with its documented exit code, in bounded time.
#[test]
fn s3_unusable_remotes_fail_clearly() {
    let Some(python) = python_or_skip() else {
        return;
    };
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 50);
    env.run(&["track", "app", "app.db"]).assert_success();
    env.snapshot(&["app"]);

    let strict = MotoServer::start(&python, true);
    let open = MotoServer::start(&python, false);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases = [
        ("denied", format!("s3://{BUCKET}/x"), strict.endpoint()),
        (
            "missing",
            "s3://no-such-bucket/x".to_owned(),
            open.endpoint(),
        ),
        (
            "closed",
            format!("s3://{BUCKET}/x"),
            format!("http://127.0.0.1:{closed}"),
        ),
    ];
    for (name, url, endpoint) in &cases {
        run(
            &env,
            env.path(),
            &["remote", "add", name, url, "--endpoint", endpoint],
        )
        .assert_success();
    }
    for command in [&["push"][..], &["fetch"][..]] {
        let with = |name: &'static str| [command, &[name]].concat();
        run_bounded(&env, env.path(), &with("denied")).expect_error(
            exit::INPUT,
            &["refused the credentials", "InvalidAccessKeyId"],
        );
        run_bounded(&env, env.path(), &with("missing"))
            .expect_error(exit::INPUT, &["does not exist", "NoSuchBucket"]);
        run_bounded(&env, env.path(), &with("closed"))
            .expect_error(exit::UNREACHABLE, &["unreachable"]);
    }
    // clone of an unusable remote leaves nothing behind.
    let endpoint = strict.endpoint();
    run_bounded(
        &env,
        env.path(),
        &[
            "clone",
            &format!("s3://{BUCKET}/x"),
            "copy",
            "--endpoint",
            &endpoint,
        ],
    )
    .expect_error(exit::INPUT, &["refused the credentials"]);
    assert!(!env.join("copy").exists());
}

#[test]
fn file_missing_directory_fails_clearly() {
    let env = TestEnv::with_store();
    let url = format!("file://{}", env.join("nowhere").display());
    run(&env, env.path(), &["remote", "add", "origin", &url]).assert_success();
    run_bounded(&env, env.path(), &["push"]).expect_error(exit::INPUT, &["does not exist"]);
    run(
        &env,
        env.path(),
        &["remote", "add", "bad", "https://example.com/x"],
    )
    .expect_error(exit::INPUT, &["invalid remote URL"]);
    assert!(
        run(&env, env.path(), &["remote", "list"])
            .assert_success()
            .contains("origin\tfile://")
    );
    run(&env, env.path(), &["remote", "remove", "origin"]).assert_success();
    run(&env, env.path(), &["push"]).expect_error(exit::INPUT, &["no remote named"]);
}

/// A read-only bind mount of a directory, unmounted when dropped.
struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    /// Mounts `source` read-only at `target`, or `None` where this process
    /// may not mount (not root, or a container without the right).
    fn new(source: &Path, target: &Path) -> Option<ReadOnlyMount> {
        let mount = |args: &[&std::ffi::OsStr]| {
            Command::new("mount")
                .args(args)
                .output()
                .is_ok_and(|out| out.status.success())
        };
        if !mount(&[source.as_os_str(), target.as_os_str(), "--bind".as_ref()]) {
            return None;
        }
        let mounted = ReadOnlyMount(target.to_path_buf());
        mount(&[
            "-o".as_ref(),
            "remount,bind,ro".as_ref(),
            target.as_os_str(),
        ])
        .then_some(mounted)
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A remote this client may only read (a NAS mounted read-only) still
/// clones and fetches: the fetch's lock cannot be written, and it goes on
/// without one, as the docs promise.
#[test]
fn a_read_only_file_remote_is_cloned_and_fetched_without_a_lock() {
    let remote = Remote::file();
    let env = project(&remote, 300);
    push(&env, env.path(), &[]);
    let target = tempfile::tempdir().unwrap();
    let source = remote.dir.as_ref().unwrap().path();
    let Some(_mounted) = ReadOnlyMount::new(source, target.path()) else {
        eprintln!("skipped: this process may not make a read-only mount");
        return;
    };
    let machine = TestEnv::new();
    let url = format!("file://{}", target.path().display());
    run(&machine, machine.path(), &["clone", &url, "copy"]).expect(exit::OK);
    let copy = machine.join("copy");
    run(&machine, &copy, &["fetch"]).expect(exit::OK);
    assert_eq!(
        resolve(&machine, &copy, "origin/app"),
        resolve(&env, env.path(), "app")
    );
    assert!(remote.keys("locks/").is_empty());
}

// --- interrupted pushes ---------------------------------------------------

/// A project whose first push takes several packs (about 40 MiB of
/// incompressible rows, 8 MiB a pack), so it can be cut short.
fn large_project(remote: &Remote) -> TestEnv {
    let env = TestEnv::with_store();
    create_db(&env.join("app.db"), Journal::Delete, 10_000, 4000);
    env.run(&["track", "app", "app.db"]).assert_success();
    env.snapshot(&["app", "-m", "large"]);
    add_origin(&env, env.path(), remote);
    env
}

/// Starts `push` and waits until the remote has its first complete pack.
fn push_until_first_index(env: &TestEnv, remote: &Remote) -> std::process::Child {
    let child = command(env, env.path(), &["push"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !remote.keys("packs/").iter().any(|k| k.ends_with(".idx")) {
        assert!(Instant::now() < deadline, "no index arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

/// The push rerun completes, sends only what had not arrived, and both
/// sides are sound.
fn rerun_completes(env: &TestEnv, remote: &Remote, had_packs: bool) {
    let rerun = push(env, env.path(), &[]);
    if had_packs {
        assert!(rerun["objects_present"].as_u64().unwrap() > 0, "{rerun}");
    }
    fsck_clean(env, env.path());
    let machine = TestEnv::new();
    let copy = clone(&machine, remote, "copy");
    fsck_clean(&machine, &copy);
    run(&machine, &copy, &["checkout", "heads/app", "-o", "app.db"]).expect(exit::OK);
    assert_eq!(
        file_hash(&copy.join("app.db")),
        file_hash(&env.join("app.db"))
    );
}

/// The pushing process is killed after its first pack: the remote has no ref
/// yet (so nothing names a missing object), and the rerun does not re-send
/// what arrived.
fn killed_push_resumes(remote: &Remote) {
    let env = large_project(remote);
    let mut child = push_until_first_index(&env, remote);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        remote.keys("refs/").is_empty(),
        "the push finished before it was killed: make large_project larger"
    );
    rerun_completes(&env, remote, true);
}

on_both_remotes!(killed_push_resumes);

/// A fetch killed while downloading imports nothing; run again, it
/// completes, and the killed one's download directory is gone.
fn killed_fetch_resumes(remote: &Remote) {
    let env = large_project(remote);
    push(&env, env.path(), &[]);
    let other = TestEnv::with_store();
    add_origin(&other, other.path(), remote);
    let mut child = command(&other, other.path(), &["fetch"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let downloads = || -> Vec<PathBuf> {
        std::fs::read_dir(other.store_dir())
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("fetch-")
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !downloads()
        .iter()
        .any(|dir| std::fs::read_dir(dir).is_ok_and(|mut files| files.next().is_some()))
    {
        assert!(Instant::now() < deadline, "no pack was downloaded");
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        other.refs().is_empty(),
        "a killed fetch imported {:?}",
        other.refs()
    );
    fsck_clean(&other, other.path());
    run(&other, other.path(), &["fetch"]).expect(exit::OK);
    assert!(downloads().is_empty(), "{:?}", downloads());
    fsck_clean(&other, other.path());
    assert_eq!(
        resolve(&other, other.path(), "origin/app"),
        resolve(&env, env.path(), "app")
    );
}

on_both_remotes!(killed_fetch_resumes);

/// The server dies mid-push: the push fails cleanly (the local store is
/// untouched) and, rerun once the server is back, completes. moto keeps
/// its data in memory, so the restarted server starts empty.
#[test]
fn s3_server_killed_mid_push_then_rerun() {
    let Some(mut remote) = Remote::s3() else {
        return;
    };
    let env = large_project(&remote);
    let child = push_until_first_index(&env, &remote);
    remote.server.as_mut().unwrap().kill();
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0), "the push outlived its server");
    fsck_clean(&env, env.path());
    let server = remote.server.as_mut().unwrap();
    server.restart();
    server.create_bucket(BUCKET);
    rerun_completes(&env, &remote, false);
}
