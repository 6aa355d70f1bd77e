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
fn flip_a_byte(env: &TestEnv, id: &str) {
    let conn = env.store_conn();
    let (pack, offset, len): (i64, i64, i64) = conn
        .query_row(
            "SELECT pack, offset, raw_len FROM objects WHERE id = ?1",
            [unhex(id)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the page object is in the store");
    let (offset, len) = (offset as usize, len as usize);
    let (raw_len, compression, dictionary, data): (i64, i64, Option<i64>, Vec<u8>) = conn
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
                        .query_row(
                            "SELECT data FROM dictionaries WHERE seq = ?1",
                            [dict],
                            |r| r.get(0),
                        )
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
    env.run(&["fsck", "--read-data"]).ok();
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

    // Restoring the damaged snapshot fails with exit 5 naming the object, and
    // the database stays as it was.
    exec(&app, "DELETE FROM items WHERE id > 30;");
    let bytes = std::fs::read(&app).unwrap();
    let out = env.run(&["restore", &s_app]);
    out.expect_error(exit::CORRUPT, &[&page]);
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
    env.run(&["show", &s_app]).ok();

    // The other database shares no page and restores fine.
    let other_state = dump(&other);
    exec(&other, "UPDATE items SET name = 'changed';");
    env.run(&["restore", &s_other]).ok();
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
    // gc deletes nothing anyone needs: afterwards the damage is the same and
    // the other database is whole.
    env.run(&["gc", "--grace", "0s"]).ok();
    let json = env.run(&["--format", "json", "fsck", "--read-data"]).json();
    assert_eq!(json["problems"].as_array().unwrap().len(), 1, "{json}");
    env.run(&["checkout", &s_other, "-o", "fine.db"]).ok();
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
