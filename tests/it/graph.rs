//! `log --graph` and `history --graph`: the snapshot history and the
//! revision graph drawn as `git log --graph` draws commits, pinned line by
//! line. The expected drawings are written from the layout's rules (see
//! `src/cli/graph.rs`), not copied from output.

use crate::common::alembic::{AlembicProject, Revision};
use crate::common::{Journal, TestEnv, exec, exit};

/// `log` JSON's time of `entry` as `log` prints it: `YYYY-MM-DD HH:MM` in
/// `--oneline`, with seconds and `UTC` in the long form.
fn times(entry: &serde_json::Value) -> (String, String) {
    let rfc3339 = entry["time"].as_str().unwrap();
    let date = &rfc3339[..10];
    let clock = &rfc3339[11..19];
    (
        format!("{date} {}", &clock[..5]),
        format!("{date} {clock} UTC"),
    )
}

/// A database with a tagged snapshot and a second one, then an unrecorded
/// change, a restore of the tag (whose safety snapshot keeps that change),
/// a schema change recorded after it, and a second restore while nothing
/// changed (whose safety snapshot is the head: nothing new to draw).
/// Returns the environment and the ids: first, second, safety, after.
fn restored_history() -> (TestEnv, [String; 4]) {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 30);
    let first = env.snapshot(&["app.db", "-m", "first", "--tag", "v1"]);
    exec(
        &db,
        "INSERT INTO items(name, payload) VALUES ('late', x'00');",
    );
    let second = env.snapshot(&["-m", "second"]);
    exec(&db, "DELETE FROM items WHERE id % 2 = 0;");
    let restore = env.run(&["--format", "json", "restore", "v1"]).ok_json();
    let safety = restore["safety_snapshot"].as_str().unwrap().to_owned();
    exec(&db, "CREATE TABLE notes(id INTEGER PRIMARY KEY);");
    let after = env.snapshot(&["-m", "after the restore"]);
    let again = env.run(&["--format", "json", "restore", &second]).ok_json();
    assert_eq!(again["safety_snapshot"], after.as_str(), "{again}");
    (env, [first, second, safety, after])
}

/// One lane, newest first; the safety snapshot says which restore followed
/// it; the restore that found nothing new to keep adds no row.
#[test]
fn log_graph_draws_a_restore_and_its_safety_snapshot() {
    let (env, [first, second, safety, after]) = restored_history();
    let log = env.log(Some("app"));
    let ids: Vec<&str> = log.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [&after, &safety, &second, &first]);
    let when: Vec<(String, String)> = log.iter().map(times).collect();

    let out = env.run(&["log", "--graph", "--oneline"]);
    out.expect(exit::OK);
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            format!(
                "* {} {} [schema changed] after the restore (HEAD -> app)",
                &after[..12],
                when[0].0
            ),
            format!(
                "* {} {} [safety: restore of {}] safety snapshot before restoring {}",
                &safety[..12],
                when[1].0,
                &first[..12],
                &first[..12]
            ),
            format!("* {} {} second", &second[..12], when[2].0),
            format!(
                "* {} {} [schema changed] first (tag: v1)",
                &first[..12],
                when[3].0
            ),
        ],
        "{}",
        out.stdout
    );

    // The long form: the lane runs down beside every line of an entry and
    // ends at the root, whose lines keep the text's indent.
    let out = env.run(&["log", "--graph", "-n", "2"]);
    out.expect(exit::OK);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let size = |line: &str, lane: &str| {
        assert!(line.starts_with(&format!("{lane} Size:    ")), "{line}");
    };
    assert_eq!(lines.len(), 14, "{}", out.stdout);
    assert_eq!(lines[0], format!("* snapshot {after} (HEAD -> app)"));
    assert_eq!(lines[1], format!("| Date:    {}", when[0].1));
    size(lines[2], "|");
    assert_eq!(
        lines[3..7],
        [
            "| Notes:   schema changed",
            "|",
            "|     after the restore",
            "|"
        ]
    );
    assert_eq!(lines[7], format!("* snapshot {safety}"));
    assert_eq!(lines[8], format!("| Date:    {}", when[1].1));
    size(lines[9], "|");
    assert_eq!(
        lines[10..],
        [
            format!("| Notes:   safety: restore of {}", &first[..12]).as_str(),
            "|",
            format!("|     safety snapshot before restoring {}", &first[..12]).as_str(),
            "|",
        ]
    );
    let out = env.run(&["log", "--graph", "--oneline", "-n", "1"]);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    let root = env.run(&["log", "--graph"]);
    let lines: Vec<&str> = root.stdout.lines().collect();
    let start = lines
        .iter()
        .position(|line| *line == format!("* snapshot {first} (tag: v1)"))
        .unwrap_or_else(|| panic!("{}", root.stdout));
    assert_eq!(lines[start + 1], format!("  Date:    {}", when[3].1));
    size(lines[start + 2], " ");
    assert_eq!(
        lines[start + 3..],
        ["  Notes:   schema changed", "", "      first", ""]
    );
}

/// JSON is the list the graph draws, each entry with its parents as
/// always; the safety snapshot's entry says what it was taken before.
#[test]
fn log_graph_json_is_the_log_with_parents_and_safety() {
    let (env, [first, second, safety, after]) = restored_history();
    let plain = env.run(&["--format", "json", "log"]).ok_json();
    let graph = env.run(&["--format", "json", "log", "--graph"]).ok_json();
    assert_eq!(graph, plain);
    let snapshots = graph["snapshots"].as_array().unwrap();
    let parents: Vec<&serde_json::Value> = snapshots.iter().map(|e| &e["parents"]).collect();
    assert_eq!(
        parents,
        [
            &serde_json::json!([safety]),
            &serde_json::json!([second]),
            &serde_json::json!([first]),
            &serde_json::json!([]),
        ]
    );
    let marks: Vec<&serde_json::Value> = snapshots.iter().map(|e| &e["safety"]).collect();
    assert_eq!(
        marks,
        [
            &serde_json::Value::Null,
            &serde_json::json!({"before": "restore", "restoring": first}),
            &serde_json::Value::Null,
            &serde_json::Value::Null,
        ]
    );
    assert_eq!(snapshots[0]["id"], after.as_str());

    // A graph of the matches of --changed would draw edges that are not
    // there: the two are refused together.
    env.run(&["log", "--graph", "--changed", "table:notes"])
        .expect(exit::USAGE);
}

/// base ── left ─────── merge ── top (head, depends on right)
///    └─── right ──┴─── side (head)
fn forked_and_merged(env: &TestEnv) -> Option<AlembicProject> {
    let mut project = AlembicProject::new(env)?;
    for revision in [
        Revision::new("a1a1a1a1a1a1", "base"),
        Revision::new("b2b2b2b2b2b2", "left").down("a1a1a1a1a1a1"),
        Revision::new("c3c3c3c3c3c3", "right").down("a1a1a1a1a1a1"),
        Revision::new("d4d4d4d4d4d4", "merge").merge(&["b2b2b2b2b2b2", "c3c3c3c3c3c3"]),
        Revision::new("e5e5e5e5e5e5", "top")
            .down("d4d4d4d4d4d4")
            .depends_on("c3c3c3c3c3c3"),
        Revision::new("f6f6f6f6f6f6", "side").down("c3c3c3c3c3c3"),
    ] {
        project.revision(revision);
    }
    project.configure_store(env, "");
    Some(project)
}

/// Two heads and a merge. Newest first, the order is side, top, merge,
/// right, left, base (the reverse of replay's order, which follows a
/// branch while it can): side opens lane 0 and top lane 1; the merge, in
/// lane 1, opens lane 2 for its second parent, right; right is in lanes 0
/// and 2, so lane 2 joins lane 0 under lane 1 (`|_|/`); left and right
/// join at base. `depends_on` orders revisions but draws no edge.
#[test]
fn history_graph_draws_two_heads_and_a_merge() {
    let env = TestEnv::new();
    let Some(_project) = forked_and_merged(&env) else {
        return;
    };
    let out = env.run(&["history", "--graph"]);
    // Two heads are an error.
    assert_eq!(out.status, 1, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    let start = lines.iter().position(|l| l.is_empty()).unwrap() + 1;
    assert_eq!(
        lines[..start],
        [
            "Alembic migrations in migrations/versions (6 revisions, 2 heads)",
            "heads: e5e5e5e5e5e5, f6f6f6f6f6f6",
            "bases: a1a1a1a1a1a1",
            "branch points: a1a1a1a1a1a1, c3c3c3c3c3c3",
            "merge points: d4d4d4d4d4d4",
            "",
        ],
        "{}",
        out.stdout
    );
    assert_eq!(
        lines[start..start + 14],
        [
            "* c3c3c3c3c3c3 -> f6f6f6f6f6f6 (head)  side",
            "|  migrations/versions/f6f6f6f6f6f6_side.py",
            "| * d4d4d4d4d4d4 -> e5e5e5e5e5e5 (head) [depends on c3c3c3c3c3c3]  top",
            "| |  migrations/versions/e5e5e5e5e5e5_top.py",
            "| *   b2b2b2b2b2b2, c3c3c3c3c3c3 -> d4d4d4d4d4d4 (merge)  merge",
            "| |\\   migrations/versions/d4d4d4d4d4d4_merge.py",
            "|_|/",
            "* | a1a1a1a1a1a1 -> c3c3c3c3c3c3 (branchpoint)  right",
            "| |  migrations/versions/c3c3c3c3c3c3_right.py",
            "| * a1a1a1a1a1a1 -> b2b2b2b2b2b2  left",
            "| |  migrations/versions/b2b2b2b2b2b2_left.py",
            "|/",
            "* <base> -> a1a1a1a1a1a1 (base, branchpoint)  base",
            "   migrations/versions/a1a1a1a1a1a1_base.py",
        ],
        "{}",
        out.stdout
    );

    // JSON ignores --graph: the same document, with each revision's
    // down_revision.
    let graph = env.run(&["--format", "json", "history", "--graph"]);
    let plain = env.run(&["--format", "json", "history"]);
    assert_eq!(graph.status, 1);
    assert_eq!(graph.json(), plain.json());
    let merge = graph.json()["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["revision"] == "d4d4d4d4d4d4")
        .cloned()
        .unwrap();
    assert_eq!(
        merge["down_revision"],
        serde_json::json!(["b2b2b2b2b2b2", "c3c3c3c3c3c3"])
    );
}
