//! Tracking databases, and the single-database convenience.

use insta::assert_snapshot;

use crate::common::{Journal, TestEnv, exec, exit};

#[test]
fn snapshot_of_an_untracked_file_tracks_it_under_its_stem() {
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 20);

    let out = env.run(&["snapshot", "app.db"]);
    out.expect(exit::OK);
    let short = out.stdout.trim_end();
    assert!(
        short.len() == 12 && short.bytes().all(|b| b.is_ascii_hexdigit()),
        "stdout must be a 12-hex short hash: {:?}",
        out.stdout
    );
    let stderr = env.redact(&out.stderr);
    let stderr = regex::Regex::new(r"added .* in \d+ objects")
        .unwrap()
        .replace(&stderr, "added [SIZE]");
    assert_snapshot!(stderr, @r"
    now tracking [TMP]/app.db as 'app'
    [app [SHORT]] snapshot; added [SIZE]
    ");

    assert_eq!(
        env.run(&["track"]).assert_success(),
        format!("app\t{}\n", env.join("app.db").display())
    );
    // The config stores the path relative to the project root.
    let config = std::fs::read_to_string(env.store_dir().join("config.toml")).unwrap();
    assert!(config.contains("[databases.app]"), "{config}");
    assert!(config.contains("path = \"app.db\""), "{config}");

    // With one database, no name is needed; by name and by path work too.
    for args in [
        &["log", "--oneline"][..],
        &["log", "--oneline", "app"],
        &["log", "--oneline", "app.db"],
    ] {
        let out = env.run(args);
        assert!(
            out.assert_success().starts_with(short),
            "{args:?}: {}",
            out.stdout
        );
        assert_eq!(out.stdout.lines().count(), 1);
    }
}

#[test]
fn track_names_databases_and_lists_them() {
    let env = TestEnv::with_store();
    env.make_db("one.db", Journal::Delete, 5);
    env.make_db("two.db", Journal::Wal, 5);
    env.run(&["track", "main", "one.db"]).assert_success();
    let out = env.run(&["track", "replica", "two.db"]);
    assert_snapshot!(env.redact(out.assert_success()), @r"
    main	[TMP]/one.db
    replica	[TMP]/two.db
    ");
    let json = env.run(&["--format", "json", "track"]).ok_json();
    assert_eq!(json["databases"][0]["name"], "main");
    assert_eq!(
        json["databases"][1]["path"],
        env.join("two.db").display().to_string()
    );

    // Tracking the same name and path again is a no-op.
    env.run(&["track", "main", "one.db"]).assert_success();
    let before = env.store_state();
    // A taken name is refused; bad names and bad files are bad input.
    env.run(&["track", "main", "two.db"])
        .expect_error(exit::REFUSED, &["main"]);
    env.run(&["track", "a/b", "one.db"])
        .expect_error(exit::INPUT, &["a/b"]);
    env.run(&["track", "HEAD", "one.db"])
        .expect_error(exit::INPUT, &["HEAD"]);
    env.run(&["track", "gone", "missing.db"])
        .expect_error(exit::INPUT, &["missing.db", "does not exist"]);
    assert_eq!(
        env.store_state(),
        before,
        "a failed track changed the store"
    );
    // A name without a path is a usage error.
    env.run(&["track", "main"]).expect(exit::USAGE);
}

#[test]
fn with_two_databases_a_name_is_required() {
    let env = TestEnv::with_store();
    env.make_db("one.db", Journal::Delete, 5);
    env.make_db("two.db", Journal::Delete, 5);
    env.run(&["track", "main", "one.db"]).assert_success();
    env.run(&["track", "other", "two.db"]).assert_success();
    let before = env.store_state();

    for args in [
        &["snapshot"][..],
        &["log"],
        &["show"],
        &["show", "HEAD~1"],
        &["restore", "HEAD"],
    ] {
        let out = env.run(args);
        out.expect_error(
            exit::INPUT,
            &["several databases are tracked (main, other); name one"],
        );
    }
    let out = env.run(&["snapshot"]);
    assert_snapshot!(env.redact(&out.stderr), @"error: several databases are tracked (main, other); name one");
    assert_eq!(
        env.store_state(),
        before,
        "a failed snapshot changed the store"
    );

    // Naming one works, and an unknown name lists the tracked ones.
    let id = env.snapshot(&["main"]);
    assert_eq!(env.log_ids(Some("main")), std::slice::from_ref(&id));
    assert_eq!(env.log_ids(Some("other")), Vec::<String>::new());
    let out = env.run(&["snapshot", "nope"]);
    out.expect_error(exit::INPUT, &["no tracked database is called 'nope'"]);
    assert!(
        out.stderr.contains("hint: tracked: main, other"),
        "{}",
        out.stderr
    );
    // Database names are revisions.
    assert_eq!(env.resolve("main"), id);
}

#[test]
fn migsnap_toml_at_the_project_root_names_databases() {
    let env = TestEnv::with_store();
    std::fs::create_dir_all(env.join("data")).unwrap();
    env.make_db("data/webui.db", Journal::Wal, 5);
    std::fs::write(
        env.join("migsnap.toml"),
        "[databases.webui]\npath = \"data/webui.db\"\n",
    )
    .unwrap();

    // The only database needs no name, and a subdirectory finds it too.
    let id = env.snapshot(&[]);
    let listed = env.run(&["--format", "json", "track"]).json();
    assert_eq!(listed["databases"][0]["name"], "webui");
    assert_eq!(
        listed["databases"][0]["path"].as_str().unwrap(),
        env.join("data/webui.db").to_str().unwrap()
    );
    let out = env.run_in(&env.join("data"), &["--format", "json", "log"], &[]);
    assert_eq!(out.json()["snapshots"][0]["id"], id.as_str());
    assert_eq!(env.resolve("webui"), id);

    // `track` may not give the name to another path.
    env.make_db("other.db", Journal::Delete, 5);
    env.run(&["track", "webui", "other.db"])
        .expect_error(exit::REFUSED, &["database name 'webui' already tracks"]);

    // A broken migsnap.toml is bad input that names the file.
    let before = env.store_state();
    std::fs::write(env.join("migsnap.toml"), "[databases.webui]\npath = 3\n").unwrap();
    env.run(&["log"])
        .expect_error(exit::INPUT, &["migsnap.toml"]);
    std::fs::write(
        env.join("migsnap.toml"),
        "[databases.\"bad name\"]\npath = \"x.db\"\n",
    )
    .unwrap();
    env.run(&["log"])
        .expect_error(exit::INPUT, &["'bad name' cannot name a database"]);
    assert_eq!(
        env.store_state(),
        before,
        "a config error changed the store"
    );
}

/// Issue 10 item 9: names are looked up as tags first, so a tag may not
/// take a name that already means something else, and a database may not
/// take a tag's name. Each refusal names the tag and why, exits 3 (4 for a
/// database name a tag holds) and changes nothing.
#[test]
fn a_tag_cannot_shadow_a_database_head_a_ref_or_an_id() {
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 10);
    let s1 = env.snapshot(&["app.db"]);
    exec(&env.join("app.db"), "DELETE FROM items WHERE id < 4;");
    let s2 = env.snapshot(&["app"]);
    let before = env.store_state();
    let cases: [(&str, &str); 9] = [
        ("app", "a tracked database has that name"),
        ("HEAD", "HEAD names the latest snapshot"),
        ("heads/app", "full ref name"),
        ("tags/x", "full ref name"),
        ("release/1.0", "full ref name"),
        (&s1[..8], "looks like a snapshot id prefix"),
        ("cafe", "looks like a snapshot id prefix"),
        ("-n", "starts with '-'"),
        ("-", "starts with '-'"),
    ];
    for (name, why) in cases {
        // `--` so that the names starting with '-' reach migsnap as names.
        env.run(&["tag", "--", name, &s1]).expect_error(
            exit::INPUT,
            &[&format!("'{name}' is not a valid tag name"), why],
        );
        env.run(&["snapshot", "app", "--allow-empty", &format!("--tag={name}")])
            .expect_error(
                exit::INPUT,
                &[&format!("'{name}' is not a valid tag name"), why],
            );
    }
    // `--help` is read as a request for help, not as a tag.
    env.run(&["tag", "--help"]).assert_success();
    assert_eq!(env.store_state(), before, "a refused tag changed the store");
    // So `restore app` and friends still mean the database's head.
    assert_eq!(env.resolve("app"), s2);
    assert_eq!(env.resolve("HEAD"), s2);

    // Ordinary names, including hex-looking short ones, still work.
    for name in ["v1", "before-upgrade", "abc", "release_1.0", "deadbeefx"] {
        env.run(&["tag", name, &s1]).assert_success();
        assert_eq!(env.resolve(name), s1);
    }

    // The other way round: a database may not take a tag's name.
    env.make_db("v1.db", Journal::Delete, 5);
    let state = env.store_state();
    let out = env.run(&["track", "v1", "v1.db"]);
    out.expect_error(exit::REFUSED, &["'v1' is already a tag"]);
    assert!(
        out.stderr
            .contains("hint: track it under another name: `migsnap track NAME"),
        "{}",
        out.stderr
    );
    // Nor by being snapshotted by path (its stem is the tag's name).
    env.run(&["snapshot", "v1.db"])
        .expect_error(exit::REFUSED, &["'v1' is already a tag"]);
    assert_eq!(env.store_state(), state);
    let listed = env.run(&["--format", "json", "track"]).json();
    assert_eq!(listed["databases"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(env.resolve("v1"), s1);
}

/// Issue 10 item 20: a database snapshotted by a path whose file stem is
/// not a valid name is refused with a hint to choose one with `track`.
#[test]
fn an_odd_file_stem_gets_a_hint_to_name_the_database() {
    let env = TestEnv::with_store();
    env.make_db("my app.db", Journal::Delete, 5);
    let out = env.run(&["snapshot", "my app.db"]);
    out.expect_error(exit::INPUT, &["'my app' cannot name a database"]);
    assert!(
        out.stderr.contains(&format!(
            "hint: the name comes from the file name; choose one with `migsnap track NAME {}`",
            "my app.db"
        )),
        "{}",
        out.stderr
    );
    env.run(&["track", "app", "my app.db"]).assert_success();
    env.snapshot(&["app"]);
}
