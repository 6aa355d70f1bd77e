//! `fsck --remote NAME [--read-data]`: a sound remote is clean; a flipped
//! byte in a pack is found by `--read-data` and by fetch, both naming the
//! pack (exit 5); a deleted pack is found without reading data.

use super::*;

/// `fsck --remote origin [EXTRA]` as JSON, with its exit code checked.
#[track_caller]
fn fsck_remote(env: &TestEnv, extra: &[&str], code: i32) -> serde_json::Value {
    let mut args = vec!["--format", "json", "fsck", "--remote", "origin"];
    args.extend_from_slice(extra);
    run(env, env.path(), &args).expect(code).json()
}

/// The project of the damage tests: plain, or with `--encrypt`.
fn damage_project(remote: &Remote, encrypted: bool) -> TestEnv {
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 2000);
    env.run(&["track", "app", "app.db"]).assert_success();
    env.snapshot(&["app", "-m", "first"]);
    let extra: &[&str] = if encrypted { &["--encrypt"] } else { &[] };
    add_remote(&env, env.path(), remote, "origin", extra).assert_success();
    push(&env, env.path(), &[]);
    exec(
        &env.join("app.db"),
        "UPDATE items SET name = 'x' WHERE id < 5;",
    );
    env.snapshot(&["app", "-m", "second"]);
    push(&env, env.path(), &[]);
    env
}

fn flipped_byte_is_found_by_fsck_remote_and_fetch(remote: &Remote, encrypted: bool) {
    let env = damage_project(remote, encrypted);
    let clean = fsck_remote(&env, &["--read-data"], exit::OK);
    assert_eq!(clean["clean"], true, "{clean}");
    assert_eq!(clean["packs_read"], clean["packs"]);
    assert!(clean["objects_read"].as_u64().unwrap() >= clean["needed_objects"].as_u64().unwrap());
    let text = run(&env, env.path(), &["fsck", "--remote", "origin"])
        .expect(exit::OK)
        .stdout
        .clone();
    assert!(text.ends_with("no problems\n"), "{text}");

    let damaged = remote.flip_byte_in_a_pack();
    let found = fsck_remote(&env, &["--read-data"], exit::CORRUPT);
    assert_eq!(found["clean"], false);
    let problems = found["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{found}");
    assert_eq!(problems[0]["key"], damaged.as_str());
    assert_eq!(problems[0]["fault"], "damaged-pack");
    let text = run(
        &env,
        env.path(),
        &["fsck", "--remote", "origin", "--read-data"],
    );
    text.expect(exit::CORRUPT);
    assert!(
        text.stdout.contains(&format!("damaged-pack {damaged}")),
        "{}",
        text.stdout
    );

    let other = TestEnv::with_store();
    let key_arg;
    let mut extra: Vec<&str> = Vec::new();
    if encrypted {
        key_arg = env
            .store_dir()
            .join("keys/origin.key")
            .to_string_lossy()
            .into_owned();
        extra.extend(["--key-file", key_arg.as_str()]);
    }
    add_remote(&other, other.path(), remote, "origin", &extra).assert_success();
    let pack = damaged
        .trim_start_matches("packs/")
        .trim_end_matches(".pack");
    run(&other, other.path(), &["fetch"]).expect_error(exit::CORRUPT, &[pack]);
    assert!(other.refs().is_empty());

    // A pack deleted is found without reading data.
    remote.delete(&damaged);
    let found = fsck_remote(&env, &[], exit::CORRUPT);
    let problems = found["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["fault"] == "missing-pack" && p["key"] == damaged.as_str()),
        "{found}"
    );
}

#[test]
fn s3_flipped_byte_is_found_by_fsck_remote_and_fetch() {
    if let Some(remote) = Remote::s3() {
        flipped_byte_is_found_by_fsck_remote_and_fetch(&remote, false);
    }
}

#[test]
fn file_flipped_byte_is_found_by_fsck_remote_and_fetch() {
    flipped_byte_is_found_by_fsck_remote_and_fetch(&Remote::file(), false);
}

#[test]
fn s3_flipped_byte_in_an_encrypted_pack_is_found() {
    if let Some(remote) = Remote::s3() {
        flipped_byte_is_found_by_fsck_remote_and_fetch(&remote, true);
    }
}

#[test]
fn file_flipped_byte_in_an_encrypted_pack_is_found() {
    flipped_byte_is_found_by_fsck_remote_and_fetch(&Remote::file(), true);
}

/// A ref whose history the indexes do not hold (an index deleted) is found
/// without reading data, and named.
#[test]
fn file_incomplete_history_is_found_without_reading_data() {
    let remote = Remote::file();
    let env = damage_project(&remote, false);
    let indexes: Vec<String> = remote
        .keys("packs/")
        .into_iter()
        .filter(|k| k.ends_with(".idx"))
        .collect();
    let largest = indexes
        .iter()
        .max_by_key(|k| remote.read(k).len())
        .unwrap()
        .clone();
    remote.delete(&largest);
    let found = fsck_remote(&env, &[], exit::CORRUPT);
    let problems = found["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["fault"] == "missing-object"
            && p["detail"].as_str().unwrap().contains("heads/app needs")),
        "{found}"
    );
    assert_eq!(found["unindexed_packs"], 1);
}
