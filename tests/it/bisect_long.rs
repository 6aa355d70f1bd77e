//! `bisect drift --revisions` on a long linear history (64 revisions, real
//! Alembic) with drift introduced in the middle: a dropped column, a table
//! made by hand, a stamped-ahead database, and an unknown stamp.

use std::path::{Path, PathBuf};

use crate::common::alembic::{AlembicProject, Revision};
use crate::common::{TestEnv, exec, exit};

/// How many revisions the history has.
const LENGTH: usize = 64;

/// The id of revision `i` (1-based): no id is a prefix of another.
fn rev(i: usize) -> String {
    format!("r{i:03}")
}

/// A linear history of [`LENGTH`] revisions, each adding one thing:
/// revision i adds column `x{i}` to the base table `t001` when i ends in 5,
/// column `c{i}` to the table made just before when i is a multiple of 4,
/// and otherwise
/// creates table `t{i}`. As in real histories, a few revisions change
/// what earlier ones made: revision 22 drops `t002` instead, and revision
/// 50 changes the type of `t001.name` (a batch rebuild of the base table).
fn long_project(env: &TestEnv) -> Option<AlembicProject> {
    let mut project = AlembicProject::new(env)?;
    for i in 1..=LENGTH {
        let body = if i % 10 == 5 {
            format!("op.add_column(\"t001\", sa.Column(\"x{i}\", sa.Integer(), nullable=True))")
        } else if i % 4 == 0 {
            // The table the revision before made (that one added a column
            // to t001 when it ends in 5: then the one before it).
            let table = if (i - 1) % 10 == 5 { i - 2 } else { i - 1 };
            format!(
                "op.add_column(\"t{table:03}\", sa.Column(\"c{i}\", sa.String(), nullable=True))"
            )
        } else if i == 22 {
            "op.drop_table(\"t002\")".to_owned()
        } else if i == 50 {
            "with op.batch_alter_table(\"t001\") as batch:\n    \
             batch.alter_column(\"name\", existing_type=sa.String(), type_=sa.Text())"
                .to_owned()
        } else {
            format!(
                "op.create_table(\"t{i:03}\", sa.Column(\"id\", sa.Integer(), primary_key=True), \
                 sa.Column(\"name\", sa.String(), nullable=False))"
            )
        };
        let mut revision = Revision::new(&rev(i), &format!("step {i}")).upgrade(&body);
        if i > 1 {
            revision = revision.down(&rev(i - 1));
        }
        project.revision(revision);
    }
    project.configure_store(env, "");
    Some(project)
}

/// A database upgraded by real Alembic to `target`, at `data/NAME.db`.
fn upgraded(project: &AlembicProject, name: &str, target: &str) -> PathBuf {
    let db = project.root().join(format!("data/{name}.db"));
    let url = format!("sqlite:///{}", db.display());
    project
        .run_with(&["upgrade", target], &[("DATABASE_URL", &url)])
        .assert_success();
    db
}

/// `bisect drift --revisions DB` as JSON, with its exit code.
fn bisect_revisions(env: &TestEnv, db: &Path) -> (i32, serde_json::Value) {
    let out = env.run(&[
        "--format",
        "json",
        "bisect",
        "drift",
        "--revisions",
        db.to_str().unwrap(),
    ]);
    assert!(
        out.status == exit::OK || out.status == exit::PROBLEMS,
        "{out:?}"
    );
    (out.status, out.json())
}

/// The (op, kind, name) of each change of a JSON schema diff, columns named
/// `table.column`.
fn changes(diff: &serde_json::Value) -> Vec<(String, String, String)> {
    diff["changes"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|c| {
            let name = match c["table"].as_str() {
                Some(t) if c["kind"] == "column" => format!("{t}.{}", c["name"].as_str().unwrap()),
                _ => c["name"].as_str().unwrap().to_owned(),
            };
            (
                c["op"].as_str().unwrap().to_owned(),
                c["kind"].as_str().unwrap().to_owned(),
                name,
            )
        })
        .collect()
}

fn change(op: &str, kind: &str, name: &str) -> (String, String, String) {
    (op.to_owned(), kind.to_owned(), name.to_owned())
}

#[test]
fn drift_in_the_middle_of_a_long_history_is_named_by_the_revision_that_made_it() {
    let env = TestEnv::new();
    let Some(project) = long_project(&env) else {
        return;
    };
    let head = rev(LENGTH);

    // A dropped column: x35 was added to the base table by revision 35, so
    // 35 is the revision after which the database should have it.
    let clean = upgraded(&project, "clean", "head");
    let dropped = project.root().join("data/dropped.db");
    std::fs::copy(&clean, &dropped).unwrap();
    exec(&dropped, "ALTER TABLE t001 DROP COLUMN x35");
    let (code, json) = bisect_revisions(&env, &dropped);
    assert_eq!(code, exit::PROBLEMS, "{json}");
    assert_eq!(json["first_bad"], rev(35), "{json}");
    assert_eq!(json["last_good"], rev(34), "{json}");
    assert_eq!(json["tip"], head, "{json}");
    assert_eq!(json["line"].as_array().unwrap().len(), LENGTH);
    let found = changes(&json["drift"]);
    assert!(
        found.contains(&change("removed", "column", "t001.x35")),
        "{found:?}"
    );
    assert!(
        found.iter().all(|(op, _, _)| op != "added"),
        "the first bad revision's drift shows only what it introduced: {found:?}"
    );
    // A binary search: about log2(64) judgements, not one per revision.
    assert!(json["tested"].as_u64().unwrap() <= 8, "{json}");
    let text = env.run(&["bisect", "drift", "--revisions", dropped.to_str().unwrap()]);
    text.expect(exit::PROBLEMS);
    assert!(
        text.stdout
            .contains(&format!("first bad revision: {}", rev(35))),
        "{text:?}"
    );
    assert!(text.stdout.contains("t001.x35"), "{text:?}");

    // A table made by hand in the middle, then upgraded to the head: no
    // revision's reference lacks anything the database has, the extra
    // table is reported as such, and no revision is blamed.
    let extra = upgraded(&project, "extra", &rev(30));
    exec(
        &extra,
        "CREATE TABLE hand_made (id INTEGER PRIMARY KEY, note TEXT)",
    );
    let url = format!("sqlite:///{}", extra.display());
    project
        .run_with(&["upgrade", "head"], &[("DATABASE_URL", &url)])
        .assert_success();
    let (code, json) = bisect_revisions(&env, &extra);
    assert_eq!(code, exit::PROBLEMS, "{json}");
    assert_eq!(json["first_bad"], serde_json::Value::Null, "{json}");
    assert_eq!(
        changes(&json["extra"]),
        [change("added", "table", "hand_made")],
        "{json}"
    );
    let text = env.run(&["bisect", "drift", "--revisions", extra.to_str().unwrap()]);
    assert!(text.stdout.contains("hand_made"), "{text:?}");
    assert!(text.stdout.contains("no revision"), "{text:?}");

    assert_eq!(json["dropped"], serde_json::json!([]), "{json}");

    // A table a revision dropped, still there (the drop was stamped over,
    // or the table made again by hand): the revision that dropped it is
    // named.
    let undropped = project.root().join("data/undropped.db");
    std::fs::copy(&clean, &undropped).unwrap();
    exec(
        &undropped,
        "CREATE TABLE t002 (id INTEGER NOT NULL, name VARCHAR NOT NULL, PRIMARY KEY (id))",
    );
    let (code, json) = bisect_revisions(&env, &undropped);
    assert_eq!(code, exit::PROBLEMS, "{json}");
    assert_eq!(json["first_bad"], serde_json::Value::Null, "{json}");
    assert_eq!(
        json["dropped"],
        serde_json::json!([{
            "kind": "table", "table": null, "name": "t002",
            "last_had": rev(21), "dropped_by": rev(22),
        }]),
        "{json}"
    );
    let text = env.run(&[
        "bisect",
        "drift",
        "--revisions",
        undropped.to_str().unwrap(),
    ]);
    assert!(
        text.stdout
            .contains(&format!("table t002 was dropped by {}", rev(22))),
        "{text:?}"
    );

    // Stamped ahead: the schema is revision 40's, the stamp says head.
    let ahead = upgraded(&project, "ahead", &rev(40));
    project
        .run_with(
            &["stamp", "head"],
            &[("DATABASE_URL", &format!("sqlite:///{}", ahead.display()))],
        )
        .assert_success();
    let (code, json) = bisect_revisions(&env, &ahead);
    assert_eq!(code, exit::PROBLEMS, "{json}");
    assert_eq!(json["first_bad"], rev(41), "{json}");
    assert_eq!(json["last_good"], rev(40), "{json}");
    assert!(
        changes(&json["drift"]).contains(&change("removed", "table", "t041")),
        "{json}"
    );

    // A database that matches the head: nothing to find, exit 0.
    let (code, json) = bisect_revisions(&env, &clean);
    assert_eq!(code, exit::OK, "{json}");
    assert_eq!(json["first_bad"], serde_json::Value::Null);
    assert_eq!(json["extra"]["changes"], serde_json::json!([]));
}

#[test]
fn an_unknown_stamp_is_compared_with_the_nearest_located_revision() {
    let env = TestEnv::new();
    let Some(project) = long_project(&env) else {
        return;
    };
    let db = project.db_path();
    project.upgrade(&rev(20)).assert_success();
    env.snapshot(&[db.to_str().unwrap(), "--schema-only"]);
    project.upgrade(&rev(30)).assert_success();
    exec(&db, "ALTER TABLE t001 DROP COLUMN x25");
    exec(
        &db,
        "UPDATE alembic_version SET version_num = 'ffffdeadbeef'",
    );
    let unknown = env.snapshot(&[db.to_str().unwrap(), "--schema-only"]);

    // Along the revision chain: the stamp names no revision, so the chain
    // ends at the revision the schema is nearest to, and says so.
    let (code, json) = bisect_revisions(&env, &db);
    assert_eq!(code, exit::PROBLEMS, "{json}");
    assert_eq!(
        json["unknown"],
        serde_json::json!(["ffffdeadbeef"]),
        "{json}"
    );
    assert_eq!(json["compared_with"], rev(30), "{json}");
    assert_eq!(json["tip"], rev(30), "{json}");
    assert_eq!(json["first_bad"], rev(25), "{json}");
    let text = env.run(&["bisect", "drift", "--revisions", db.to_str().unwrap()]);
    assert!(
        text.stdout.contains("ffffdeadbeef") && text.stdout.contains(&rev(30)),
        "{text:?}"
    );

    // Over the snapshots: the snapshot with the unknown stamp is the first
    // bad one, and it is explained against the nearest revision, not
    // against an empty schema (which listed every table as extra).
    let out = env.run(&["--format", "json", "bisect", "drift", "app"]);
    out.expect(exit::PROBLEMS);
    let json = out.json();
    assert_eq!(json["first_bad"], unknown, "{json}");
    let explained = &json["explained"];
    assert_eq!(
        explained["unknown"],
        serde_json::json!(["ffffdeadbeef"]),
        "{json}"
    );
    assert_eq!(
        explained["compared_with"],
        serde_json::json!([rev(30)]),
        "{json}"
    );
    let found = changes(&explained["drift"]);
    assert!(
        found.contains(&change("removed", "column", "t001.x25")),
        "{found:?}"
    );
    assert!(
        found.iter().all(|(op, _, _)| op != "added"),
        "nothing is extra against the nearest revision: {found:?}"
    );
    let text = env.run(&["bisect", "drift", "app"]);
    assert!(
        text.stdout.contains("ffffdeadbeef") && text.stdout.contains(&rev(30)),
        "{text:?}"
    );
}
