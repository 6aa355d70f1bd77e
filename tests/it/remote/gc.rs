//! `gc --remote`: frees the packs of a history retention gave up, never
//! what a concurrent push relies on, and respects (or breaks) locks.

use super::*;

/// `gc --remote origin EXTRA…` as JSON, with its exit code checked.
#[track_caller]
fn remote_gc(env: &TestEnv, extra: &[&str], code: i32) -> serde_json::Value {
    let mut args = vec!["--format", "json", "gc", "--remote", "origin"];
    args.extend_from_slice(extra);
    let out = run(env, env.path(), &args);
    out.expect(code);
    if code == exit::OK {
        out.json()
    } else {
        serde_json::Value::Null
    }
}

#[track_caller]
fn remote_clean(env: &TestEnv) {
    let checked = run(
        env,
        env.path(),
        &[
            "--format",
            "json",
            "fsck",
            "--remote",
            "origin",
            "--read-data",
        ],
    )
    .expect(exit::OK)
    .json();
    assert_eq!(checked["clean"], true, "{checked}");
}

/// The remote, cloned afresh, gives back the project's database.
#[track_caller]
fn clone_matches(env: &TestEnv, remote: &Remote) {
    let machine = TestEnv::new();
    let copy = clone(&machine, remote, "copy");
    run(&machine, &copy, &["checkout", "heads/app", "-o", "app.db"]).expect(exit::OK);
    assert_eq!(
        file_hash(&copy.join("app.db")),
        file_hash(&env.join("app.db"))
    );
}

/// The database replaced by another of other rows and another shape (as a
/// restore from elsewhere would), and snapshotted: the two histories share
/// no page (two rows a leaf instead of one, so not even the interior pages
/// of the rowid tree are alike).
fn rewrite_everything(env: &TestEnv, message: &str) {
    let other = env.join(format!("{message}.db"));
    create_db(&other, Journal::Delete, 26_000, 1500);
    std::fs::rename(&other, env.join("app.db")).unwrap();
    env.snapshot(&["app", "-m", message]);
}

/// A pack deleted from the remote by hand while its index stays: the next
/// push does not trust the index and sends what the pack held again, a
/// clone restores, `fsck --remote` names the orphaned index, and the
/// remote gc deletes it.
fn a_pack_lost_from_the_remote_is_sent_again(remote: &Remote) {
    let env = project(remote, 5000);
    push(&env, env.path(), &[]);
    let (lost, _) = remote
        .keys("packs/")
        .into_iter()
        .filter(|key| key.ends_with(".pack"))
        .map(|key| {
            let len = remote.read(&key).len();
            (key, len)
        })
        .max_by_key(|(_, len)| *len)
        .expect("a pack");
    remote.delete(&lost);
    exec(
        &env.join("app.db"),
        "UPDATE items SET name = 'changed' WHERE id <= 3;",
    );
    env.snapshot(&["app", "-m", "second"]);
    let second = push(&env, env.path(), &[]);
    assert!(second["packs"].as_u64().unwrap() >= 2, "{second}");
    clone_matches(&env, remote);

    let checked = run(
        &env,
        env.path(),
        &["--format", "json", "fsck", "--remote", "origin"],
    )
    .json();
    assert!(
        checked["problems"].to_string().contains("missing-pack"),
        "{checked}"
    );
    let collected = remote_gc(&env, &["--grace", "0s"], exit::OK);
    assert_eq!(collected["deleted_packless"], 1, "{collected}");
    let orphan = lost.replace(".pack", ".idx");
    assert!(
        !remote.keys("packs/").contains(&orphan),
        "{orphan} is still there"
    );
    remote_clean(&env);
    clone_matches(&env, remote);
}

on_both_remotes!(a_pack_lost_from_the_remote_is_sent_again);

/// A first push, then a history that forgets the first image: the remote
/// gc deletes the packs only it needed, after the grace period only, and
/// the remote stays complete.
fn gc_frees_a_forgotten_history(remote: &Remote) {
    let env = large_project(remote);
    let first = push(&env, env.path(), &[]);
    rewrite_everything(&env, "second");
    env.run(&["forget", "app", "--keep-last", "1"])
        .expect(exit::OK);
    env.run(&["gc", "--grace", "0s"]).expect(exit::OK);
    push(&env, env.path(), &[]);
    let packs_before = remote.keys("packs/").len();

    // Within the grace period (default 1 hour) nothing goes.
    let young = remote_gc(&env, &[], exit::OK);
    assert_eq!(young["deleted_packs"], 0, "{young}");
    assert!(young["kept_young"].as_u64().unwrap() > 0, "{young}");
    let dry = remote_gc(&env, &["--grace", "0s", "--dry-run"], exit::OK);
    assert_eq!(
        remote.keys("packs/").len(),
        packs_before,
        "a dry run deletes nothing"
    );
    let done = remote_gc(&env, &["--grace", "0s"], exit::OK);
    assert_eq!(done["deleted_packs"], dry["deleted_packs"]);
    assert_eq!(done["repacked_packs"], dry["repacked_packs"]);
    eprintln!("measured ({}): {done}", remote.url);
    let deleted = done["deleted_packs"].as_u64().unwrap();
    let repacked = done["repacked_packs"].as_u64().unwrap();
    // Every pack of the first push goes: deleted, or (the one that also
    // holds the first snapshot and the listing the new image's delta starts
    // from) rewritten with only those.
    assert_eq!(
        deleted + repacked,
        first["packs"].as_u64().unwrap(),
        "{done}"
    );
    assert_eq!(
        done["written_packs"].as_u64().unwrap(),
        repacked.min(1),
        "{done}"
    );
    assert!(done["freed_bytes"].as_u64().unwrap() > 30_000_000, "{done}");
    assert_eq!(
        remote.keys("packs/").len(),
        packs_before - 2 * (deleted + repacked) as usize + 2 * repacked.min(1) as usize
    );
    assert!(remote.keys("locks/").is_empty(), "the lock is released");
    remote_clean(&env);
    clone_matches(&env, remote);
    // Nothing left to do.
    let again = remote_gc(&env, &["--grace", "0s"], exit::OK);
    assert_eq!(again["deleted_packs"], 0);
}

on_both_remotes!(gc_frees_a_forgotten_history);

/// A push of a large change runs while gc runs again and again with no
/// grace period: each gc either runs or is refused by the push's lock,
/// a push refused by a gc's lock succeeds when run again, and in the end
/// the remote is complete and gives back the database.
fn gc_during_a_push_loses_nothing(remote: &Remote) {
    let env = large_project(remote);
    push(&env, env.path(), &[]);
    rewrite_everything(&env, "second");
    let mut pusher = command(&env, env.path(), &["push"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut ran, mut refused) = (0, 0);
    let status = loop {
        if let Some(status) = pusher.try_wait().unwrap() {
            break status;
        }
        let out = run(
            &env,
            env.path(),
            &["gc", "--remote", "origin", "--grace", "0s"],
        );
        match out.status {
            0 => ran += 1,
            4 => {
                assert!(out.stderr.contains("locked by"), "{}", out.stderr);
                refused += 1;
            }
            other => panic!("gc exited {other}: {}", out.stderr),
        }
    };
    eprintln!("measured: {ran} gc run(s) and {refused} refused during the push");
    if status.code() != Some(0) {
        let mut stderr = String::new();
        std::io::Read::read_to_string(pusher.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(4), "{stderr}");
        assert!(stderr.contains("locked by gc"), "{stderr}");
        push(&env, env.path(), &[]);
    }
    remote_gc(&env, &["--grace", "0s"], exit::OK);
    remote_clean(&env);
    assert_eq!(
        run(&env, env.path(), &["--format", "json", "fetch"])
            .expect(exit::OK)
            .json()["refs"][0]["target"],
        resolve(&env, env.path(), "app").as_str()
    );
    clone_matches(&env, remote);
}

on_both_remotes!(gc_during_a_push_loses_nothing);

/// A lock in the bytes another client would write.
fn lock_bytes(what: &str, time: i64) -> Vec<u8> {
    format!("migsnap lock 1\n{what}\nother-host\n4242\n{time}\n").into_bytes()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A fresh lock of another client refuses gc (and a gc's lock, a push),
/// naming the holder; a stale one is ignored; --break-lock removes a fresh
/// one.
fn locks_are_respected_stale_ones_ignored(remote: &Remote) {
    let env = project(remote, 300);
    push(&env, env.path(), &[]);
    remote.write("locks/push-0123456789abcdef", &lock_bytes("push", now()));
    run(&env, env.path(), &["gc", "--remote", "origin"])
        .expect_error(exit::REFUSED, &["locked by push on other-host (pid 4242)"]);
    assert_eq!(
        remote.keys("locks/"),
        ["locks/push-0123456789abcdef"],
        "gc released its own lock"
    );

    remote.write("locks/exclusive", &lock_bytes("gc", now()));
    exec(&env.join("app.db"), "DELETE FROM items WHERE id = 1;");
    env.snapshot(&["app", "-m", "second"]);
    let refused = run(&env, env.path(), &["push"]);
    refused.expect_error(exit::REFUSED, &["locked by gc on other-host"]);
    assert!(
        refused.stderr.contains("--break-lock"),
        "{}",
        refused.stderr
    );

    // Left by clients that died half an hour ago and more: ignored.
    let stale = now() - 31 * 60;
    remote.write("locks/exclusive", &lock_bytes("gc", stale));
    remote.write("locks/push-0123456789abcdef", &lock_bytes("push", stale));
    push(&env, env.path(), &[]);
    remote_gc(&env, &[], exit::OK);
    assert!(
        remote.keys("locks/").is_empty(),
        "{:?}",
        remote.keys("locks/")
    );

    remote.write("locks/exclusive", &lock_bytes("gc", now()));
    remote_gc(&env, &[], exit::REFUSED);
    remote_gc(&env, &["--break-lock"], exit::OK);
    assert!(remote.keys("locks/").is_empty());
    remote_clean(&env);
}

on_both_remotes!(locks_are_respected_stale_ones_ignored);

/// A fetch (and a clone) holds a lock of its own while it downloads: a
/// remote gc that holds the remote refuses it before anything is read, a
/// fetch's fresh lock refuses a gc, and a finished fetch leaves no lock.
fn fetch_and_gc_exclude_each_other(remote: &Remote) {
    let env = project(remote, 300);
    push(&env, env.path(), &[]);
    let machine = TestEnv::new();
    let copy = clone(&machine, remote, "copy");
    assert!(
        remote.keys("locks/").is_empty(),
        "{:?}",
        remote.keys("locks/")
    );

    remote.write("locks/exclusive", &lock_bytes("gc", now()));
    run(&machine, &copy, &["fetch"])
        .expect_error(exit::REFUSED, &["locked by gc on other-host (pid 4242)"]);
    let endpoint = remote.endpoint_args();
    run(
        &machine,
        machine.path(),
        &clone_args(remote, "second", &endpoint),
    )
    .expect_error(exit::REFUSED, &["locked by gc on other-host"]);
    assert!(!machine.join("second").join(".migsnap").exists());
    assert_eq!(
        remote.keys("locks/"),
        ["locks/exclusive"],
        "the fetches took their locks back"
    );
    remote.delete("locks/exclusive");

    remote.write("locks/fetch-0123456789abcdef", &lock_bytes("fetch", now()));
    run(&env, env.path(), &["gc", "--remote", "origin"])
        .expect_error(exit::REFUSED, &["locked by fetch on other-host (pid 4242)"]);
    remote.delete("locks/fetch-0123456789abcdef");

    run(&machine, &copy, &["fetch"]).expect(exit::OK);
    assert!(
        remote.keys("locks/").is_empty(),
        "{:?}",
        remote.keys("locks/")
    );
}

on_both_remotes!(fetch_and_gc_exclude_each_other);
