//! Naming snapshots: full ids, prefixes, tags, database names, `~N`, `^N`,
//! `@{N}`, and the errors for names that do not resolve.

use std::collections::HashMap;

use insta::assert_snapshot;
use migsnap_store::{Object, ObjectId, ObjectStore, Store};

use crate::common::{Journal, TestEnv, exec, exit};

/// app.db with three snapshots (s1 tagged v1), oldest first.
fn history() -> (TestEnv, [String; 3]) {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 10);
    let s1 = env.snapshot(&["app.db", "--tag", "v1", "-m", "one"]);
    exec(&db, "INSERT INTO items(name) VALUES ('two');");
    let s2 = env.snapshot(&["-m", "two"]);
    exec(&db, "INSERT INTO items(name) VALUES ('three');");
    let s3 = env.snapshot(&["-m", "three"]);
    (env, [s1, s2, s3])
}

/// The shortest prefix (at least 4 digits) of `id` that no other id shares.
fn unique_prefix<'a>(id: &'a str, others: &[String]) -> &'a str {
    (4..=64)
        .map(|n| &id[..n])
        .find(|p| others.iter().filter(|o| o.starts_with(p)).count() == 1)
        .unwrap()
}

#[test]
fn names_resolve_to_the_right_snapshot() {
    let (env, [s1, s2, s3]) = history();
    let all = [s1.clone(), s2.clone(), s3.clone()];
    let p2 = unique_prefix(&s2, &all);
    let cases: Vec<(String, &String)> = vec![
        (s2.clone(), &s2),
        (p2.to_owned(), &s2),
        (s2[..12].to_owned(), &s2),
        (s2[..10].to_uppercase(), &s2),
        ("v1".into(), &s1),
        ("tags/v1".into(), &s1),
        ("heads/app".into(), &s3),
        ("app".into(), &s3),
        ("HEAD".into(), &s3),
        ("@".into(), &s3),
        ("HEAD~0".into(), &s3),
        ("HEAD~".into(), &s2),
        ("HEAD~1".into(), &s2),
        ("HEAD^".into(), &s2),
        ("HEAD^1".into(), &s2),
        ("HEAD~2".into(), &s1),
        ("HEAD~1~1".into(), &s1),
        ("HEAD^^".into(), &s1),
        ("app~1".into(), &s2),
        ("app~2".into(), &s1),
        (format!("{}~1", &s3[..12]), &s2),
        ("@{0}".into(), &s3),
        ("@{1}".into(), &s2),
        ("HEAD@{2}".into(), &s1),
        ("app@{1}".into(), &s2),
        ("app@{1}~1".into(), &s1),
    ];
    for (rev, want) in &cases {
        let out = env.run(&["--format", "json", "show", rev]);
        assert_eq!(
            out.ok_json()["id"].as_str().unwrap(),
            want.as_str(),
            "`show {rev}`"
        );
    }
    // checkout and tag take the same names.
    env.run(&["checkout", "HEAD~2", "-o", "old.db"])
        .assert_success();
    env.run(&["tag", "second", "app~1"]).assert_success();
    assert_eq!(env.resolve("second"), s2);
}

#[test]
fn a_tag_that_looks_like_hex_is_refused_so_a_prefix_keeps_its_meaning() {
    let (env, [s1, s2, _s3]) = history();
    let name = &s2[..8];
    env.run(&["tag", name, &s1])
        .expect_error(exit::INPUT, &["looks like a snapshot id prefix"]);
    assert_eq!(env.resolve(name), s2);
}

#[test]
fn names_that_do_not_resolve_are_bad_input() {
    let (env, [s1, s2, s3]) = history();
    let before = env.store_state();
    let all = [s1.clone(), s2.clone(), s3.clone()];
    // A well-formed prefix that matches nothing.
    let unused = (0u32..)
        .map(|n| format!("{n:08x}"))
        .find(|p| !all.iter().any(|id| id.starts_with(p.as_str())))
        .unwrap();

    let cases: Vec<(String, &str)> = vec![
        ("HEAD~3".into(), "goes back further than the history of"),
        ("HEAD~5".into(), "goes back further than the history of"),
        ("v1~1".into(), "goes back further than the history of"),
        ("HEAD^2".into(), "goes back further than the history of"),
        ("HEAD~x".into(), "malformed revision 'HEAD~x'"),
        ("HEAD~1x".into(), "malformed revision 'HEAD~1x'"),
        ("@{x}".into(), "malformed revision '@{x}'"),
        ("@{9}".into(), "the reflog of heads/app has only 3 entries"),
        ("abc".into(), "unknown revision 'abc'"),
        (s2[..3].to_owned(), "unknown revision"),
        ("nosuchtag".into(), "unknown revision 'nosuchtag'"),
        ("zzzz".into(), "unknown revision 'zzzz'"),
        (unused.clone(), "unknown revision"),
        ("nosuchtag@{1}".into(), "unknown revision 'nosuchtag@{1}'"),
    ];
    for (rev, needle) in &cases {
        let out = env.run(&["show", rev]);
        out.expect_error(exit::INPUT, &[needle, rev]);
        assert_eq!(out.stdout, "", "`show {rev}` printed a result");
        env.run(&["checkout", rev, "-o", "x.db"])
            .expect_error(exit::INPUT, &[rev]);
        env.run(&["restore", rev]).expect_error(exit::INPUT, &[rev]);
        env.run(&["tag", "t", rev])
            .expect_error(exit::INPUT, &[rev]);
    }
    assert!(!env.join("x.db").exists());
    assert_eq!(
        env.store_state(),
        before,
        "a failed resolution changed the store"
    );

    let out = env.run(&["show", "abc"]);
    assert_snapshot!(out.stderr, @r"
    error: unknown revision 'abc'
    hint: name a snapshot by hash prefix (4+ digits), tag, database name, HEAD~N or @{N}; see `migsnap log`
    ");
    let out = env.run(&["show", "HEAD~5"]);
    assert_snapshot!(env.redact(&out.stderr), @"error: revision 'HEAD~5' goes back further than the history of [SHORT]");
    assert!(out.stderr.contains(&s3[..12]));
    // Prefixes name snapshots only, never the pages or images they hold.
    let conn = env.store_conn();
    let blob: Vec<u8> = conn
        .query_row("SELECT id FROM objects WHERE kind = 1 LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let blob = crate::common::hex(&blob);
    env.run(&["show", &blob])
        .expect_error(exit::INPUT, &["unknown revision"]);
}

#[test]
fn an_ambiguous_prefix_lists_the_candidates() {
    let (env, [_s1, _s2, s3]) = history();
    // Variants of a real snapshot (other messages) until two share 4 hex
    // digits: about 300 hashes by the birthday bound.
    let (a, b) = {
        let store = Store::open(&env.store_dir()).unwrap();
        let Object::Snapshot(base) = store.read(&s3.parse::<ObjectId>().unwrap()).unwrap() else {
            panic!("not a snapshot");
        };
        let mut seen: HashMap<String, (ObjectId, Object)> = HashMap::new();
        let mut found = None;
        for i in 0..100_000u32 {
            let mut variant = base.clone();
            variant.message = format!("variant {i}");
            let object = Object::Snapshot(variant);
            let id = ObjectId::hash(&migsnap_store::codec::encode_object(&object));
            let key = id.to_string()[..4].to_owned();
            if s3.starts_with(&key) {
                continue;
            }
            if let Some(other) = seen.remove(&key) {
                found = Some((other, (id, object)));
                break;
            }
            seen.insert(key, (id, object));
        }
        let (a, b) = found.expect("a 4-digit collision within 100000 hashes");
        let mut store = store;
        assert_eq!(store.write(&a.1).unwrap(), a.0);
        assert_eq!(store.write(&b.1).unwrap(), b.0);
        (a.0.to_string(), b.0.to_string())
    };
    let common_len = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    assert!(common_len >= 4);
    let prefix = &a[..4];
    let before = env.store_state();

    let out = env.run(&["show", prefix]);
    out.expect_error(
        exit::INPUT,
        &[&format!(
            "revision '{prefix}' is ambiguous: 2 snapshots start with it"
        )],
    );
    let (first, second) = if a < b { (&a, &b) } else { (&b, &a) };
    assert!(
        out.stderr.contains(&format!(
            "hint: candidates: {}, {}\n",
            &first[..12],
            &second[..12]
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: use more hex digits"),
        "{}",
        out.stderr
    );
    env.run(&["checkout", prefix, "-o", "x.db"])
        .expect_error(exit::INPUT, &["ambiguous"]);
    assert!(!env.join("x.db").exists());
    env.run(&["restore", prefix])
        .expect_error(exit::INPUT, &["ambiguous"]);
    env.run(&["tag", "t", prefix])
        .expect_error(exit::INPUT, &["ambiguous"]);
    assert_eq!(
        env.store_state(),
        before,
        "an ambiguous revision changed the store"
    );

    // One more digit than they share picks each of them.
    for id in [&a, &b] {
        let json = env
            .run(&["--format", "json", "show", &id[..common_len + 1]])
            .ok_json();
        assert_eq!(json["id"], id.as_str());
        assert!(json["message"].as_str().unwrap().starts_with("variant "));
    }
}

#[test]
fn head_and_reflog_with_several_databases() {
    let env = TestEnv::with_store();
    let a = env.make_db("a.db", Journal::Delete, 5);
    env.make_db("b.db", Journal::Wal, 5);
    let a1 = env.snapshot(&["a.db"]);
    let b1 = env.snapshot(&["b.db"]);
    exec(&a, "DELETE FROM items WHERE id = 1;");
    let a2 = env.snapshot(&["a"]);
    assert_eq!(env.resolve("a"), a2);
    assert_eq!(env.resolve("a~1"), a1);
    assert_eq!(env.resolve("a@{1}"), a1);
    assert_eq!(env.resolve("b"), b1);
    env.run(&["show", "HEAD"])
        .expect_error(exit::INPUT, &["several databases are tracked (a, b)"]);
    env.run(&["show", "b~1"])
        .expect_error(exit::INPUT, &["goes back further"]);
    // restore DB takes HEAD of that database.
    let out = env.run(&["restore", "HEAD~1", "a"]);
    out.expect(exit::OK);
    assert!(
        out.stdout.contains(&format!("restored {}", &a1[..12])),
        "{}",
        out.stdout
    );
}
