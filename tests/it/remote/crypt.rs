//! Encrypted remotes (`remote add --encrypt`): the round trip with the key,
//! refusals without it or with another, and what the bucket shows of the
//! data (nothing: no row value, no object id, no pack magic).

use super::*;

/// A row value no page of the database holds twice.
const SECRET: &str = "migsnap-secret-row-7f3a91";

/// A project like [`project`] with a known row, whose `origin` is added
/// with `--encrypt`.
fn encrypted_project(remote: &Remote) -> TestEnv {
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 1500);
    exec(
        &env.join("app.db"),
        &format!("INSERT INTO items(id, name, payload) VALUES (900001, '{SECRET}', x'00');"),
    );
    env.run(&["track", "app", "app.db"]).assert_success();
    env.snapshot(&["app", "-m", "first"]);
    let added = add_remote(&env, env.path(), remote, "origin", &["--encrypt"]);
    added.assert_success();
    assert!(added.stdout.contains("keep a copy"), "{}", added.stdout);
    env
}

/// The key file `remote add --encrypt` made.
fn key_file(env: &TestEnv) -> PathBuf {
    let key = env.store_dir().join("keys/origin.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "a key file is private");
    key
}

/// Every 64-hex-digit id in `show --format json` of `rev`: the snapshot,
/// its schema, its image listing.
fn ids_of(env: &TestEnv, rev: &str) -> Vec<String> {
    let shown = run(env, env.path(), &["--format", "json", "show", rev])
        .expect(exit::OK)
        .stdout
        .clone();
    let hex = regex::Regex::new("[0-9a-f]{64}").unwrap();
    let mut ids: Vec<String> = hex
        .find_iter(&shown)
        .map(|m| m.as_str().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert!(!ids.is_empty());
    ids
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Nothing on the remote shows the secret row, an object id (in hex, in
/// bytes, in a key), a ref name, or a plain pack or index.
fn assert_opaque(remote: &Remote, ids: &[String]) {
    let objects = remote.objects();
    assert!(
        objects.len() >= 4,
        "{:?}",
        objects.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
    for (key, bytes) in &objects {
        assert!(!contains(bytes, SECRET.as_bytes()), "{key} shows the row");
        assert!(
            !key.contains("heads") && !contains(bytes, b"heads/app"),
            "{key} shows the ref name"
        );
        assert!(
            !bytes.starts_with(b"MSNP") || key == "config",
            "{key} is a plain pack or index"
        );
        for id in ids {
            let raw: Vec<u8> = (0..32)
                .map(|at| u8::from_str_radix(&id[2 * at..2 * at + 2], 16).unwrap())
                .collect();
            assert!(!key.contains(&id[..16]), "{key} names object {id}");
            assert!(
                !contains(bytes, id.as_bytes()),
                "{key} holds object id {id} in hex"
            );
            assert!(!contains(bytes, &raw), "{key} holds object id {id}");
        }
    }
}

/// The control for [`assert_opaque`]: a plain remote does show the ids.
#[test]
fn file_plain_remote_shows_ids_which_encryption_hides() {
    let remote = Remote::file();
    let env = project(&remote, 50);
    push(&env, env.path(), &[]);
    let id = resolve(&env, env.path(), "app");
    let objects = remote.objects();
    assert!(
        objects
            .iter()
            .any(|(_, bytes)| contains(bytes, id.as_bytes()))
    );
    assert!(objects.iter().any(|(key, _)| key == "refs/heads/app"));
}

/// Push to an encrypted remote, clone it with the key on a new machine, and
/// get the database back byte for byte; the bucket shows nothing of it; an
/// incremental push and a fetch work through the encryption too.
fn encrypted_round_trip_shows_nothing(remote: &Remote) {
    let env = encrypted_project(remote);
    let first = push(&env, env.path(), &[]);
    assert_eq!(first["refs"][0]["outcome"], "created");
    let mut ids = ids_of(&env, "app");
    assert_opaque(remote, &ids);

    let machine = TestEnv::new();
    let key = key_file(&env);
    let key_arg = key.to_string_lossy().into_owned();
    let endpoint = remote.endpoint_args();
    let mut args = clone_args(remote, "copy", &endpoint);
    args.extend(["--key-file", &key_arg]);
    run(&machine, machine.path(), &args).expect(exit::OK);
    let copy = machine.join("copy");
    fsck_clean(&machine, &copy);
    run(&machine, &copy, &["checkout", "heads/app", "-o", "app.db"]).expect(exit::OK);
    assert_eq!(
        file_hash(&copy.join("app.db")),
        file_hash(&env.join("app.db"))
    );

    exec(
        &env.join("app.db"),
        "UPDATE items SET name = 'changed' WHERE id <= 3;",
    );
    env.snapshot(&["app", "-m", "second"]);
    let second = push(&env, env.path(), &[]);
    assert_eq!(second["refs"][0]["outcome"], "fast-forward");
    assert!(
        second["bytes"].as_u64().unwrap() * 10 < first["bytes"].as_u64().unwrap(),
        "{second}"
    );
    ids.extend(ids_of(&env, "app"));
    // The remote's own maintenance works through the encryption: a check
    // that reads every object, and a gc (whose lock is sealed too).
    run(
        &env,
        env.path(),
        &["fsck", "--remote", "origin", "--read-data"],
    )
    .expect(exit::OK);
    run(
        &env,
        env.path(),
        &["gc", "--remote", "origin", "--grace", "0s"],
    )
    .expect(exit::OK);
    assert_opaque(remote, &ids);
    let listed = run(&env, env.path(), &["remote", "list"])
        .expect(exit::OK)
        .stdout
        .clone();
    assert!(listed.contains("(encrypted)"), "{listed}");

    // The clone keeps its own copy of the key, and fetches with it.
    let fetched = run(&machine, &copy, &["--format", "json", "fetch"])
        .expect(exit::OK)
        .json();
    assert_eq!(fetched["refs"][0]["name"], "heads/app");
    assert_eq!(
        resolve(&machine, &copy, "origin/app"),
        resolve(&env, env.path(), "app")
    );
    run(
        &machine,
        &copy,
        &["checkout", "origin/app", "-o", "second.db"],
    )
    .expect(exit::OK);
    assert_eq!(dump(&copy.join("second.db")), dump(&env.join("app.db")));
}

on_both_remotes!(encrypted_round_trip_shows_nothing);

/// No key, another key, a key for a plain remote: each refused up front
/// (exit 3, one line), and nothing is written or left behind.
fn wrong_or_missing_keys_are_refused(remote: &Remote) {
    let env = encrypted_project(remote);
    push(&env, env.path(), &[]);
    let before = remote.objects();
    let endpoint = remote.endpoint_args();

    let machine = TestEnv::new();
    run(
        &machine,
        machine.path(),
        &clone_args(remote, "copy", &endpoint),
    )
    .expect_error(exit::INPUT, &["is encrypted", "no key file"]);
    assert!(
        !machine.join("copy").exists(),
        "a refused clone leaves nothing"
    );

    let other = TestEnv::with_store();
    add_remote(&other, other.path(), remote, "theirs", &["--encrypt"]).assert_success();
    let wrong = other.store_dir().join("keys/theirs.key");
    let mut args = clone_args(remote, "copy", &endpoint);
    let wrong_arg = wrong.to_string_lossy().into_owned();
    args.extend(["--key-file", &wrong_arg]);
    run(&machine, machine.path(), &args).expect_error(exit::INPUT, &["is not the key of remote"]);
    assert!(!machine.join("copy").exists());
    run(&other, other.path(), &["fetch", "theirs"]).expect_error(exit::INPUT, &["is not the key"]);

    // A store without the key can neither read nor write it.
    let plain = TestEnv::with_store();
    plain.make_db("app.db", Journal::Delete, 10);
    plain.run(&["track", "app", "app.db"]).assert_success();
    plain.snapshot(&["app"]);
    add_origin(&plain, plain.path(), remote);
    run(&plain, plain.path(), &["push"]).expect_error(exit::INPUT, &["is encrypted"]);
    run(&plain, plain.path(), &["fetch"]).expect_error(exit::INPUT, &["is encrypted"]);
    assert_eq!(remote.objects(), before, "a refused store wrote nothing");

    // --key-file with a file that is not a key.
    std::fs::write(plain.join("junk.key"), "not a key\n").unwrap();
    add_remote(
        &plain,
        plain.path(),
        remote,
        "bad",
        &["--key-file", "junk.key"],
    )
    .expect_error(exit::INPUT, &["does not hold a migsnap key"]);
    // --encrypt over a key file left by a removed remote of that name.
    run(&env, env.path(), &["remote", "remove", "origin"]).assert_success();
    add_remote(&env, env.path(), remote, "origin", &["--encrypt"])
        .expect_error(exit::REFUSED, &["exists already"]);
    let kept = env.store_dir().join("keys/origin.key");
    let kept_arg = kept.to_string_lossy().into_owned();
    add_remote(
        &env,
        env.path(),
        remote,
        "origin",
        &["--key-file", &kept_arg],
    )
    .assert_success();
    run(&env, env.path(), &["fetch"]).expect(exit::OK);
}

on_both_remotes!(wrong_or_missing_keys_are_refused);

/// A key given for a remote that holds plain data is refused: one remote
/// is never half encrypted.
#[test]
fn file_key_for_a_plain_remote_is_refused() {
    let remote = Remote::file();
    let env = project(&remote, 50);
    push(&env, env.path(), &[]);
    add_remote(&env, env.path(), &remote, "sealed", &["--encrypt"]).assert_success();
    run(&env, env.path(), &["push", "sealed"]).expect_error(exit::INPUT, &["is not encrypted"]);
    assert!(!remote.keys("").contains(&"config".to_owned()));
}

/// Someone with the bucket but not the key moves sealed objects around: a
/// pack copied over another, and one ref's value over another ref's. Each
/// is refused as damage (exit 5) naming the key; nothing is imported.
#[test]
fn file_swapped_objects_do_not_open() {
    let remote = Remote::file();
    let env = encrypted_project(&remote);
    run(&env, env.path(), &["tag", "first"]).expect(exit::OK);
    exec(&env.join("app.db"), "DELETE FROM items WHERE id < 100;");
    env.snapshot(&["app", "-m", "second"]);
    push(&env, env.path(), &[]);
    let key = key_file(&env).to_string_lossy().into_owned();
    let fetch_fails = |needle: &str| {
        let other = TestEnv::with_store();
        add_remote(
            &other,
            other.path(),
            &remote,
            "origin",
            &["--key-file", &key],
        )
        .assert_success();
        run(&other, other.path(), &["fetch"])
            .expect_error(exit::CORRUPT, &["does not decrypt", needle]);
        assert!(other.refs().is_empty());
    };

    let refs = remote.keys("refs/");
    assert_eq!(refs.len(), 2, "{refs:?}");
    let (one, two) = (remote.read(&refs[0]), remote.read(&refs[1]));
    remote.write(&refs[0], &two);
    fetch_fails(&refs[0]);
    remote.write(&refs[0], &one);
    run(&env, env.path(), &["fetch"]).expect(exit::OK);

    // A sealed index written over its pack: a genuine object of this key,
    // at another key.
    let pack = remote
        .keys("packs/")
        .into_iter()
        .find(|k| k.ends_with(".pack"))
        .unwrap();
    let index = pack.replace(".pack", ".idx");
    remote.write(&pack, &remote.read(&index));
    fetch_fails(&pack);
    let found = run(
        &env,
        env.path(),
        &[
            "--format",
            "json",
            "fsck",
            "--remote",
            "origin",
            "--read-data",
        ],
    );
    found.expect(exit::CORRUPT);
    assert!(found.stdout.contains(&pack), "{}", found.stdout);
}
