//! Snapshot fast, pack later (issue 14): a snapshot writes loose packs, and
//! `gc` packs them into compact ones without changing any object id or any
//! restored byte.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::Connection;

use crate::common::{TestEnv, dump_digest, file_hash, integrity_check};

/// A chat-shaped database of about 7 MiB: messages of words from a small
/// vocabulary in random order, which compress as real text does (and better
/// with a dictionary).
fn create_chat_db(path: &Path, rows: u64) {
    let mut conn = Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE messages(id INTEGER PRIMARY KEY, role TEXT, content TEXT);")
        .unwrap();
    let tx = conn.transaction().unwrap();
    for id in 0..rows {
        tx.execute(
            "INSERT INTO messages(id, role, content) VALUES (?1, ?2, ?3)",
            rusqlite::params![
                id as i64,
                ["user", "assistant"][id as usize % 2],
                message(id, 0)
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

/// About 500 bytes of text for message `id`, edition `edit`.
fn message(id: u64, edit: u64) -> String {
    let mut draw = [0u8; 80];
    blake3::Hasher::new()
        .update(&id.to_le_bytes())
        .update(&edit.to_le_bytes())
        .finalize_xof()
        .fill(&mut draw);
    draw.chunks(2)
        .map(|pair| {
            let w = (usize::from(pair[0]) << 8 | usize::from(pair[1])) % 800;
            let hex = blake3::hash(&w.to_le_bytes()).to_hex();
            hex[..3 + w % 8].to_owned()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Rewrites every 97th message as edition `edition`.
fn edit(db: &Path, edition: u64) {
    let conn = Connection::open(db).unwrap();
    for id in (0..24_000).step_by(97) {
        conn.execute(
            "UPDATE messages SET content = ?1 WHERE id = ?2",
            rusqlite::params![message(id, edition), id as i64],
        )
        .unwrap();
    }
}

fn object_ids(env: &TestEnv) -> BTreeSet<Vec<u8>> {
    let conn = env.store_conn();
    let mut stmt = conn.prepare("SELECT id FROM objects").unwrap();
    stmt.query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// Packs by the zstd level they were written with: `(level, count)`.
fn pack_levels(env: &TestEnv) -> Vec<(i64, i64)> {
    let conn = env.store_conn();
    let mut stmt = conn
        .prepare("SELECT level, count(*) FROM packs GROUP BY level ORDER BY level")
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[test]
fn gc_packs_a_snapshot_smaller_with_every_id_and_restored_byte_unchanged() {
    let env = TestEnv::with_store();
    let db = env.join("chat.db");
    create_chat_db(&db, 24_000);
    env.run(&["track", "chat", "chat.db"]).assert_success();
    let s1 = env.snapshot(&["chat"]);
    edit(&db, 1);
    let s2 = env.snapshot(&["chat"]);
    // The snapshot wrote only loose packs and trained no dictionary.
    assert!(
        pack_levels(&env).iter().all(|(level, _)| *level == 1),
        "{:?}",
        pack_levels(&env)
    );
    let dictionaries: i64 = env
        .store_conn()
        .query_row("SELECT count(*) FROM dictionaries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dictionaries, 0, "a snapshot trained a dictionary");

    let ids = object_ids(&env);
    let checkouts = |suffix: &str| -> Vec<String> {
        [&s1, &s2]
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let out = format!("{suffix}{n}.db");
                env.run(&["checkout", id, "-o", &out]).assert_success();
                file_hash(&env.join(&out))
            })
            .collect()
    };
    let before = checkouts("before");

    let json = env.run(&["--format", "json", "gc"]).ok_json();
    let packed = &json["packed"];
    assert_eq!(json["deleted_objects"], 0, "{json}");
    assert_eq!(
        packed["objects"].as_u64().unwrap(),
        ids.len() as u64,
        "{json}"
    );
    assert_eq!(packed["trained_dictionary"], true, "{json}");
    assert!(
        packed["bytes_after"].as_u64() < packed["bytes_before"].as_u64(),
        "{json}"
    );
    assert!(
        json["store_size_after"].as_u64() < json["store_size_before"].as_u64(),
        "the store did not shrink: {json}"
    );
    eprintln!("packing: {json}");

    assert_eq!(
        object_ids(&env),
        ids,
        "packing changed the set of object ids"
    );
    assert!(
        pack_levels(&env).iter().all(|(level, _)| *level == 9),
        "{:?}",
        pack_levels(&env)
    );
    env.run(&["fsck", "--read-data"]).assert_success();
    assert_eq!(
        checkouts("after"),
        before,
        "a checkout changed after packing"
    );

    // Nothing is loose any more: a second gc packs nothing.
    let size = json["store_size_after"].clone();
    let again = env.run(&["--format", "json", "gc"]).ok_json();
    assert_eq!(again["packed"]["objects"], 0, "{again}");
    assert_eq!(again["packed"]["loose_packs"], 0, "{again}");
    assert_eq!(again["store_size_after"], size, "{again}");

    // A restore in place reads the compact packs; the safety snapshot of
    // the edited database is loose again until the next gc.
    edit(&db, 2);
    let content = dump_digest(&db);
    env.run(&["restore", &s1]).assert_success();
    assert_eq!(integrity_check(&db), "ok");
    assert_eq!(dump_digest(&db), dump_digest(&env.join("before0.db")));
    assert!(pack_levels(&env).iter().any(|(level, _)| *level == 1));
    let text = env.run(&["gc"]).assert_success().to_owned();
    assert!(
        text.contains("\npacked ") && text.contains("loose packs"),
        "{text}"
    );
    env.run(&["checkout", "HEAD", "-o", "safety.db"])
        .assert_success();
    assert_eq!(dump_digest(&env.join("safety.db")), content);
    env.run(&["fsck", "--read-data"]).assert_success();
}
