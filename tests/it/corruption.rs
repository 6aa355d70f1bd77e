//! Damage to `store.db`: fsck must name the object and the snapshots it
//! affects; restore must refuse with exit 5 and leave the database alone.

use crate::common::{
    Journal, TestEnv, dump, exec, exit, file_hash, integrity_check, page_ids, unhex,
};

/// Two tracked databases that share no page, one snapshot each; returns the
/// env, app's snapshot, other's snapshot, and the id of a page only app has.
fn two_databases() -> (TestEnv, String, String, String) {
    let env = TestEnv::with_store();
    let app = env.make_db("app.db", Journal::Delete, 60);
    let other = env.make_db("other.db", Journal::Delete, 60);
    let s_app = env.snapshot(&["app.db"]);
    let s_other = env.snapshot(&["other.db"]);
    let app_pages = page_ids(&app);
    let other_pages = page_ids(&other);
    // Page 3 holds row data unique to app.db.
    let page = app_pages[2].clone();
    assert!(
        !other_pages.contains(&page),
        "the databases share the chosen page"
    );
    assert_eq!(app_pages.iter().filter(|p| **p == page).count(), 1);
    (env, s_app, s_other, page)
}

/// Flips one bit in the middle of the stored bytes of object `id`, and
/// nothing else: its pack is rewritten uncompressed (compression 0) with the
/// bit flipped inside that one object's range.
pub(crate) fn flip_a_byte(env: &TestEnv, id: &str) {
    let conn = env.store_conn();
    let (pack, offset, len): (i64, i64, i64) = conn
        .query_row(
            "SELECT pack, offset, raw_len FROM objects WHERE id = ?1",
            [unhex(id)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the page object is in the store");
    let (offset, len) = (offset as usize, len as usize);
    let (raw_len, compression, dictionary, data): (i64, i64, Option<Vec<u8>>, Vec<u8>) = conn
        .query_row(
            "SELECT raw_len, compression, dictionary, data FROM packs WHERE seq = ?1",
            [pack],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    let mut raw = match compression {
        0 => data,
        1 => {
            let mut decompressor = match dictionary {
                Some(dict) => {
                    let bytes: Vec<u8> = conn
                        .query_row("SELECT data FROM dictionaries WHERE id = ?1", [dict], |r| {
                            r.get(0)
                        })
                        .unwrap();
                    zstd::bulk::Decompressor::with_dictionary(&bytes).unwrap()
                }
                None => zstd::bulk::Decompressor::new().unwrap(),
            };
            decompressor.decompress(&data, raw_len as usize).unwrap()
        }
        other => panic!("unknown compression {other}"),
    };
    assert_eq!(raw.len(), raw_len as usize);
    raw[offset + len / 2] ^= 0x40;
    let n = conn
        .execute(
            "UPDATE packs SET data = ?1, compression = 0, dictionary = NULL WHERE seq = ?2",
            rusqlite::params![raw, pack],
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn a_flipped_page_is_found_and_blocks_only_the_snapshots_using_it() {
    let (env, s_app, s_other, page) = two_databases();
    let app = env.join("app.db");
    let other = env.join("other.db");
    env.run(&["fsck", "--read-data"]).assert_success();
    flip_a_byte(&env, &page);

    // Without --read-data, fsck checks presence and structure only.
    env.run(&["fsck"]).expect(exit::OK);

    let out = env.run(&["fsck", "--read-data"]);
    out.expect(exit::PROBLEMS);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(
        lines[0].starts_with(&format!("corrupt object {page} (")),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].ends_with(&format!("): affects {}", &s_app[..12])),
        "{}",
        lines[0]
    );
    assert!(lines[1].ends_with(": 1 problem(s)"), "{}", lines[1]);
    let json = env.run(&["--format", "json", "fsck", "--read-data"]);
    json.expect(exit::PROBLEMS);
    let json = json.json();
    assert_eq!(json["clean"], false);
    assert_eq!(json["problems"].as_array().unwrap().len(), 1);
    let problem = &json["problems"][0];
    assert_eq!(problem["object"], page.as_str());
    assert_eq!(problem["fault"], "corrupt");
    assert_eq!(problem["snapshots"], serde_json::json!([s_app]));

    // A live file that still holds the page's good bytes: the delta
    // restore keeps them (hash-checked) and never reads the rotten copy,
    // so it restores the right content; fsck still reports the rot.
    let before = std::fs::read(&app).unwrap();
    env.run(&["restore", &s_app]).assert_success();
    let dump = |db: &std::path::Path| {
        let conn = rusqlite::Connection::open(db).unwrap();
        let mut stmt = conn.prepare("SELECT * FROM items ORDER BY id").unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| {
                Ok(format!("{:?}", r.get::<_, rusqlite::types::Value>(1)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows
    };
    let restored = env.join("restored-copy.db");
    std::fs::write(&restored, &before).unwrap();
    assert_eq!(
        dump(&app),
        dump(&restored),
        "the restore kept the good bytes"
    );
    env.run(&["fsck", "--read-data"]).expect(exit::PROBLEMS);

    // Restoring the damaged snapshot over a file that does not hold the
    // page fails with exit 5 naming the object, and the database stays as
    // it was.
    std::fs::remove_file(&app).unwrap();
    exec(
        &app,
        "CREATE TABLE unrelated(x); INSERT INTO unrelated VALUES (1);",
    );
    let bytes = std::fs::read(&app).unwrap();
    let out = env.run(&["restore", &s_app]);
    out.expect_error(exit::CORRUPT, &[]);
    assert!(out.stderr.contains(page.as_str()), "{}", out.stderr);
    assert!(
        out.stderr.contains("hint: run `migsnap fsck --read-data`"),
        "{}",
        out.stderr
    );
    assert!(
        std::fs::read(&app).unwrap() == bytes,
        "a failed restore changed the database"
    );
    assert_eq!(env.restore_temps(env.path()), Vec::<String>::new());
    // So does checkout, which creates nothing.
    env.run(&["checkout", &s_app, "-o", "copy.db"])
        .expect_error(exit::CORRUPT, &[&page]);
    assert!(!env.join("copy.db").exists());
    assert_eq!(env.restore_temps(env.path()), Vec::<String>::new());
    // Its metadata is still readable.
    env.run(&["show", &s_app]).assert_success();

    // The other database shares no page and restores fine.
    let other_state = dump(&other);
    exec(&other, "UPDATE items SET name = 'changed';");
    env.run(&["restore", &s_other]).assert_success();
    assert_eq!(dump(&other), other_state);
    assert_eq!(integrity_check(&other), "ok");
}

#[test]
fn a_deleted_page_is_reported_missing() {
    let (env, s_app, s_other, page) = two_databases();
    let app = env.join("app.db");
    let n = env
        .store_conn()
        .execute("DELETE FROM objects WHERE id = ?1", [unhex(&page)])
        .unwrap();
    assert_eq!(n, 1);

    for args in [&["fsck"][..], &["fsck", "--read-data"]] {
        let out = env.run(args);
        out.expect(exit::PROBLEMS);
        assert!(
            out.stdout.starts_with(&format!(
                "missing object {page}: affects {}\n",
                &s_app[..12]
            )),
            "{args:?}: {}",
            out.stdout
        );
    }
    let json = env.run(&["--format", "json", "fsck"]);
    let json = json.json();
    assert_eq!(json["problems"][0]["fault"], "missing");
    assert_eq!(json["problems"][0]["snapshots"], serde_json::json!([s_app]));

    exec(&app, "DELETE FROM items;");
    let bytes = file_hash(&app);
    env.run(&["restore", &s_app])
        .expect_error(exit::CORRUPT, &[&page, "not found"]);
    assert_eq!(file_hash(&app), bytes);
    // gc refuses while something reachable is missing (issue 10, item 18);
    // afterwards the damage is the same and the other database is whole.
    env.run(&["gc", "--grace", "0s"])
        .expect_error(exit::CORRUPT, &["gc refused", &page, "missing"]);
    let json = env.run(&["--format", "json", "fsck", "--read-data"]).json();
    assert_eq!(json["problems"].as_array().unwrap().len(), 1, "{json}");
    env.run(&["checkout", &s_other, "-o", "fine.db"])
        .assert_success();
    assert_eq!(integrity_check(&env.join("fine.db")), "ok");
}

#[test]
fn a_damaged_snapshot_object_is_reported_with_its_ref() {
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 20);
    let s1 = env.snapshot(&["app.db"]);
    let conn = env.store_conn();
    let n = conn
        .execute("DELETE FROM objects WHERE id = ?1", [unhex(&s1)])
        .unwrap();
    assert_eq!(n, 1);
    drop(conn);
    let out = env.run(&["fsck"]);
    out.expect(exit::PROBLEMS);
    assert!(
        out.stdout
            .starts_with(&format!("missing object {s1}: affects heads/app\n")),
        "{}",
        out.stdout
    );
    env.run(&["show", &s1[..12]])
        .expect_error(exit::INPUT, &["unknown revision"]);
    env.run(&["log"]).expect_error(exit::CORRUPT, &[&s1]);
}

/// Where an object's bytes live: (kind, pack, offset, raw length).
fn locate(env: &TestEnv, id: &str) -> (i64, i64, i64, i64) {
    env.store_conn()
        .query_row(
            "SELECT kind, pack, offset, raw_len FROM objects WHERE id = ?1",
            [unhex(id)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap_or_else(|e| panic!("object {id}: {e}"))
}

/// Ids of every object in the store, by kind (1 blob, 2 image, 3 snapshot).
fn objects_of_kind(env: &TestEnv, kind: i64) -> std::collections::BTreeSet<String> {
    env.store_conn()
        .prepare("SELECT id FROM objects WHERE kind = ?1")
        .unwrap()
        .query_map([kind], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|r| crate::common::hex(&r.unwrap()))
        .collect()
}

/// A store where `app.db` is large enough, with notes that share enough
/// text, that `gc`, packing its loose packs, trains the zstd dictionary,
/// and `other.db` has a schema and pages of its own.
struct Damageable {
    env: TestEnv,
    s_app: String,
    s_other: String,
    /// app's image listing, schema blob and one of its pages.
    image: String,
    schema: String,
    page: String,
}

fn damageable() -> Damageable {
    let env = TestEnv::with_store();
    let app = env.join("app.db");
    exec(
        &app,
        "CREATE TABLE notes(id INTEGER PRIMARY KEY, title TEXT, body TEXT);
         CREATE TEMP TABLE shared AS
             WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 15)
             SELECT j, hex(randomblob(500)) AS text FROM k;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000)
         INSERT INTO notes SELECT i, 'note ' || i,
             (SELECT text FROM shared WHERE j = i % 16) || hex(randomblob(300)) FROM n;",
    );
    let s_app = env.snapshot(&["app.db"]);
    let images = objects_of_kind(&env, 2);
    let blobs = objects_of_kind(&env, 1);
    let app_pages = page_ids(&app);
    let other = env.make_db("other.db", Journal::Delete, 60);
    exec(&other, "CREATE TABLE extra(x);");
    let s_other = env.snapshot(&["other.db"]);
    let other_pages = page_ids(&other);
    let schema = blobs
        .iter()
        .find(|b| !app_pages.contains(b))
        .expect("app's schema blob")
        .clone();
    let page = app_pages[app_pages.len() / 2].clone();
    assert!(!other_pages.contains(&page));
    env.run(&["gc"]).assert_success();
    let dictionaries: i64 = env
        .store_conn()
        .query_row("SELECT count(*) FROM dictionaries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        dictionaries, 1,
        "packing app.db should have trained a dictionary"
    );
    Damageable {
        env,
        s_app,
        s_other,
        image: images.into_iter().next().expect("app's image"),
        schema,
        page,
    }
}

/// fsck (with `--read-data` when `read_data`) reports `object` with
/// `fault`, naming every snapshot in `affected` on the text line and in
/// JSON; returns the JSON problems.
#[track_caller]
fn fsck_names(
    env: &TestEnv,
    read_data: bool,
    object: &str,
    fault: &str,
    affected: &[&str],
) -> Vec<serde_json::Value> {
    let mut args = vec!["fsck"];
    if read_data {
        args.push("--read-data");
    }
    let out = env.run(&args);
    out.expect(exit::PROBLEMS);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains(object))
        .unwrap_or_else(|| panic!("fsck does not name {object}:\n{}", out.stdout));
    assert!(
        line.starts_with(&format!("{fault} object {object}")),
        "{line}"
    );
    for snapshot in affected {
        assert!(line.contains(&snapshot[..12]), "{line} misses {snapshot}");
    }
    let mut json_args = vec!["--format", "json"];
    json_args.extend(&args);
    let json = env.run(&json_args).json();
    let problems = json["problems"].as_array().unwrap().clone();
    let problem = problems
        .iter()
        .find(|p| p["object"] == object)
        .expect("the object is in the JSON problems");
    assert_eq!(problem["fault"], fault);
    for snapshot in affected {
        assert!(
            problem["snapshots"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == snapshot),
            "{problem}"
        );
    }
    problems
}

/// Restoring `snapshot` fails with exit 5 naming `object` and changes
/// nothing; checkout creates nothing.
#[track_caller]
fn restore_refuses(env: &TestEnv, db: &str, snapshot: &str, object: &str) {
    restore_refuses_naming_one_of(env, db, snapshot, &[object.to_owned()]);
}

/// [`restore_refuses`] where the error may name any of `objects` (the
/// members of one damaged pack: the first one read is named).
#[track_caller]
fn restore_refuses_naming_one_of(env: &TestEnv, db: &str, snapshot: &str, objects: &[String]) {
    let path = env.join(db);
    // A file that does not hold the snapshot's pages, so the restore must
    // read them (a delta restore keeps the pages a live file still holds).
    std::fs::remove_file(&path).unwrap();
    exec(
        &path,
        "CREATE TABLE unrelated(x); INSERT INTO unrelated VALUES (1);",
    );
    let bytes = file_hash(&path);
    let names_one = |out: &crate::common::Output, lines: usize| {
        out.expect_error(exit::CORRUPT, &[]);
        assert!(
            objects.iter().any(|o| out
                .stderr
                .lines()
                .take(lines)
                .any(|line| line.contains(o.as_str()))),
            "{} names none of the damaged objects",
            out.stderr
        );
    };
    // A delta restore may meet the damage first while proving the undo
    // (a page shared with the live file): then the cause line names it.
    names_one(&env.run(&["restore", snapshot, db]), 2);
    assert_eq!(file_hash(&path), bytes, "a refused restore changed {db}");
    names_one(&env.run(&["checkout", snapshot, "-o", "refused.db"]), 1);
    assert!(!env.join("refused.db").exists());
    assert_eq!(env.restore_temps(env.path()), Vec::<String>::new());
}

/// The undamaged snapshot still restores, verified.
#[track_caller]
fn restores(env: &TestEnv, db: &str, snapshot: &str) {
    let path = env.join(db);
    let expected = {
        env.run(&["checkout", snapshot, "-o", "expected.db", "--force"])
            .assert_success();
        dump(&env.join("expected.db"))
    };
    exec(&path, "CREATE TABLE IF NOT EXISTS later(x);");
    env.run(&["restore", snapshot, db]).assert_success();
    assert_eq!(dump(&path), expected);
    assert_eq!(integrity_check(&path), "ok");
}

#[test]
fn a_flipped_snapshot_object_is_corrupt_and_named_with_its_ref() {
    let d = damageable();
    flip_a_byte(&d.env, &d.s_app);
    let out = d.env.run(&["fsck"]);
    out.expect(exit::PROBLEMS);
    assert!(
        out.stdout
            .starts_with(&format!("corrupt object {} (", d.s_app)),
        "{}",
        out.stdout
    );
    restore_refuses(&d.env, "app.db", &d.s_app, &d.s_app);
    d.env
        .run(&["log", "app"])
        .expect_error(exit::CORRUPT, &[&d.s_app]);
    restores(&d.env, "other.db", &d.s_other);
}

#[test]
fn a_damaged_image_listing_is_found_and_blocks_its_snapshot_only() {
    let d = damageable();
    flip_a_byte(&d.env, &d.image);
    fsck_names(&d.env, false, &d.image, "corrupt", &[&d.s_app]);
    restore_refuses(&d.env, "app.db", &d.s_app, &d.image);
    restores(&d.env, "other.db", &d.s_other);

    let n = d
        .env
        .store_conn()
        .execute("DELETE FROM objects WHERE id = ?1", [unhex(&d.image)])
        .unwrap();
    assert_eq!(n, 1);
    fsck_names(&d.env, false, &d.image, "missing", &[&d.s_app]);
    restore_refuses(&d.env, "app.db", &d.s_app, &d.image);
    restores(&d.env, "other.db", &d.s_other);
}

#[test]
fn a_damaged_schema_blob_is_found_and_named() {
    let d = damageable();
    flip_a_byte(&d.env, &d.schema);
    // Only a read of the data finds a flipped schema blob.
    fsck_names(&d.env, true, &d.schema, "corrupt", &[&d.s_app]);
    // The snapshot's metadata and schema cannot be shown, with exit 5.
    d.env
        .run(&["show", &d.s_app])
        .expect_error(exit::CORRUPT, &[&d.schema]);
    restores(&d.env, "other.db", &d.s_other);
    let n = d
        .env
        .store_conn()
        .execute("DELETE FROM objects WHERE id = ?1", [unhex(&d.schema)])
        .unwrap();
    assert_eq!(n, 1);
    fsck_names(&d.env, false, &d.schema, "missing", &[&d.s_app]);
}

/// Ids of the objects stored in pack `pack`.
fn pack_members(env: &TestEnv, pack: i64) -> Vec<String> {
    env.store_conn()
        .prepare("SELECT id FROM objects WHERE pack = ?1")
        .unwrap()
        .query_map([pack], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|r| crate::common::hex(&r.unwrap()))
        .collect()
}

/// Ids of the objects in every pack compressed with a dictionary.
fn dictionary_members(env: &TestEnv) -> Vec<String> {
    env.store_conn()
        .prepare(
            "SELECT o.id FROM objects o JOIN packs p ON p.seq = o.pack
             WHERE p.dictionary IS NOT NULL",
        )
        .unwrap()
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|r| crate::common::hex(&r.unwrap()))
        .collect()
}

#[test]
fn a_truncated_pack_is_found_with_every_object_in_it() {
    let d = damageable();
    let (_, pack, _, _) = locate(&d.env, &d.page);
    let members = pack_members(&d.env, pack);
    assert!(members.len() > 1, "pages should share packs");
    let n = d
        .env
        .store_conn()
        .execute(
            "UPDATE packs SET data = substr(data, 1, length(data) / 2) WHERE seq = ?1",
            [pack],
        )
        .unwrap();
    assert_eq!(n, 1);
    // Presence alone looks fine; reading the data finds every object.
    d.env.run(&["fsck"]).expect(exit::OK);
    let problems = fsck_names(&d.env, true, &d.page, "corrupt", &[&d.s_app]);
    for member in &members {
        assert!(
            problems.iter().any(|p| p["object"] == member.as_str()),
            "{member} of the truncated pack is not reported"
        );
    }
    restore_refuses_naming_one_of(&d.env, "app.db", &d.s_app, &members);
    restores(&d.env, "other.db", &d.s_other);
}

#[test]
fn a_deleted_pack_makes_its_objects_missing() {
    let d = damageable();
    let (_, pack, _, _) = locate(&d.env, &d.page);
    let members = pack_members(&d.env, pack);
    let n = d
        .env
        .store_conn()
        .execute("DELETE FROM packs WHERE seq = ?1", [pack])
        .unwrap();
    assert_eq!(n, 1);
    let out = d.env.run(&["fsck", "--read-data"]);
    out.expect(exit::PROBLEMS);
    assert!(out.stdout.contains(&d.page), "{}", out.stdout);
    assert!(out.stdout.contains(&d.s_app[..12]), "{}", out.stdout);
    restore_refuses_naming_one_of(&d.env, "app.db", &d.s_app, &members);
    restores(&d.env, "other.db", &d.s_other);
}

#[test]
fn a_damaged_dictionary_is_found_through_every_pack_that_needs_it() {
    let d = damageable();
    let conn = d.env.store_conn();
    let packs: i64 = conn
        .query_row(
            "SELECT count(*) FROM packs WHERE dictionary IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(packs > 0, "no pack uses the dictionary");
    // Truncate it to half, keeping it a BLOB as the store wrote it.
    let dictionary: Vec<u8> = conn
        .query_row("SELECT data FROM dictionaries", [], |r| r.get(0))
        .unwrap();
    conn.execute(
        "UPDATE dictionaries SET data = ?1",
        [&dictionary[..dictionary.len() / 2]],
    )
    .unwrap();
    drop(conn);
    let members = dictionary_members(&d.env);
    let out = d.env.run(&["fsck", "--read-data"]);
    out.expect(exit::PROBLEMS);
    assert!(out.stdout.contains(&d.page), "{}", out.stdout);
    assert!(out.stdout.contains(&d.s_app[..12]), "{}", out.stdout);
    restore_refuses_naming_one_of(&d.env, "app.db", &d.s_app, &members);

    // Deleting it outright is found the same way. The refused restore's
    // safety snapshot compressed its pages with the dictionary too, so they
    // are among the damaged now (a restore proves its undo first).
    d.env
        .store_conn()
        .execute_batch("DELETE FROM dictionaries;")
        .unwrap();
    let members = dictionary_members(&d.env);
    let out = d.env.run(&["fsck", "--read-data"]);
    out.expect(exit::PROBLEMS);
    assert!(out.stdout.contains(&d.page), "{}", out.stdout);
    restore_refuses_naming_one_of(&d.env, "app.db", &d.s_app, &members);
}

#[test]
fn a_corrupt_schema_in_the_source_database_is_refused_at_snapshot_time() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 30);
    env.snapshot(&["app.db"]);
    let before = env.store_state();
    // Garbage over the cells of sqlite_schema on page 1.
    let mut bytes = std::fs::read(&db).unwrap();
    for b in &mut bytes[3900..4000] {
        *b = 0x07;
    }
    bytes[100 + 8..100 + 12].copy_from_slice(&[0xff; 4]);
    std::fs::write(&db, &bytes).unwrap();
    let out = env.run(&["snapshot", "app"]);
    out.expect_error(
        exit::INPUT,
        &[&db.display().to_string(), "is corrupt", "malformed"],
    );
    assert_eq!(env.store_state(), before);
}

/// Damage SQLite can read past is recorded, flagged (issue 14; the flag
/// itself is tested in tests/it/integrity.rs).
#[test]
fn a_corrupt_data_page_in_the_source_database_is_recorded_and_flagged() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 60);
    env.snapshot(&["app.db"]);
    let before = env.store_state();
    let mut bytes = std::fs::read(&db).unwrap();
    let page_size = 4096;
    // Garbage in the b-tree header of the table's first leaf page.
    for b in &mut bytes[page_size * 2..page_size * 2 + 64] {
        *b = 0xff;
    }
    std::fs::write(&db, &bytes).unwrap();
    assert_ne!(integrity_check(&db), "ok");
    let out = env.run(&["snapshot", "app"]);
    out.expect(exit::PROBLEMS);
    assert!(
        out.stderr.contains(&format!(
            "error: [snapshot.integrity-failed] {}: recorded, but it fails its integrity check",
            db.display()
        )),
        "{}",
        out.stderr
    );
    assert_ne!(env.store_state().refs, before.refs);
}

#[test]
fn a_flipped_snapshot_object_names_the_ref_pointing_at_it() {
    let d = damageable();
    flip_a_byte(&d.env, &d.s_app);
    let out = d.env.run(&["fsck"]);
    out.expect(exit::PROBLEMS);
    assert!(
        out.stdout
            .lines()
            .next()
            .unwrap()
            .ends_with("affects heads/app"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_store_value_of_the_wrong_type_is_corruption_not_a_crash() {
    let d = damageable();
    // The dictionary turned into TEXT (as `||` in a hand-made UPDATE does).
    d.env
        .store_conn()
        .execute_batch("UPDATE dictionaries SET data = CAST(data AS TEXT) || '';")
        .unwrap();
    let app = d.env.join("app.db");
    let bytes = file_hash(&app);
    // restore first takes a safety snapshot, whose writing needs the
    // dictionary: it refuses (exit 4) with the store error as the cause.
    let out = d.env.run(&["restore", &d.s_app, "app.db"]);
    out.expect_error(exit::REFUSED, &["cannot take the safety snapshot"]);
    assert!(out.stderr.contains("caused by: store "), "{}", out.stderr);
    for args in [
        &["fsck", "--read-data"][..],
        &["checkout", &d.s_other, "-o", "x.db"],
    ] {
        let out = d.env.run(args);
        out.expect_error(exit::CORRUPT, &["store.db"]);
        assert!(
            out.stderr.contains("hint: store.db itself is damaged"),
            "{}",
            out.stderr
        );
    }
    assert_eq!(file_hash(&app), bytes);
    assert!(!d.env.join("x.db").exists());
}

/// Issue 10, item 18: with the index rows of a whole pack lost, the pack
/// looked unused and gc deleted it, destroying the bytes a repair could
/// have re-indexed. gc must refuse while anything reachable is missing.
#[test]
fn gc_refuses_while_reachable_objects_are_missing_and_keeps_their_packs() {
    let (env, s_app, _, page) = two_databases();
    let (_, pack, _, _) = locate(&env, &page);
    let members = pack_members(&env, pack);
    let conn = env.store_conn();
    let n = conn
        .execute("DELETE FROM objects WHERE pack = ?1", [pack])
        .unwrap();
    assert_eq!(n, members.len());
    let pack_bytes = |conn: &rusqlite::Connection| -> Option<Vec<u8>> {
        conn.query_row("SELECT data FROM packs WHERE seq = ?1", [pack], |r| {
            r.get(0)
        })
        .ok()
    };
    let before = pack_bytes(&conn).expect("the pack is there");
    let packs = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("SELECT count(*) FROM packs", [], |r| r.get(0))
            .unwrap()
    };
    let count = packs(&conn);
    drop(conn);
    env.run(&["fsck"]).expect(exit::PROBLEMS);
    for args in [&["gc", "--grace", "0s"][..], &["gc", "--dry-run"]] {
        let out = env.run(args);
        out.expect_error(exit::CORRUPT, &["gc refused", "missing"]);
        let conn = env.store_conn();
        assert_eq!(pack_bytes(&conn), Some(before.clone()), "{args:?}");
        assert_eq!(packs(&conn), count, "{args:?}");
    }
    let json = env.run(&["--format", "json", "fsck"]).json();
    assert!(
        json["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["fault"] == "missing"
                && p["snapshots"]
                    .as_array()
                    .unwrap()
                    .contains(&s_app.as_str().into())),
        "{json}"
    );
}

/// Issue 10, item 16: a dropped store table and an impossible `raw_len`
/// (whose sum overflowed in `du`) exited 70 as internal errors; they are a
/// damaged store, exit 5, named.
#[test]
fn a_dropped_table_or_an_impossible_length_is_a_damaged_store() {
    let (env, s_app, _, _) = two_databases();
    env.store_conn()
        .execute_batch(&format!("UPDATE objects SET raw_len = {};", i64::MAX))
        .unwrap();
    env.run(&["du"])
        .expect_error(exit::CORRUPT, &["is damaged", "raw_len"]);

    let (env, _, _, _) = two_databases();
    env.store_conn()
        .execute_batch("DROP TABLE forgotten;")
        .unwrap();
    for args in [&["log"][..], &["fsck"], &["checkout", &s_app, "-o", "x.db"]] {
        env.run(args).expect_error(
            exit::CORRUPT,
            &["is damaged", "table 'forgotten' is missing"],
        );
    }
    assert!(!env.join("x.db").exists());
}
