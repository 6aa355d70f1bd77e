//! Verdicts: one policy turns findings into exit codes for every judging
//! command. A correct database exits 0; file notes are info; the project's
//! `[findings]` table changes severities, ignores known findings (still
//! listed in JSON) and sets the threshold; `--fail-on` and `-q` work the
//! same in `status` and `history`.

use crate::common::alembic::{AlembicProject, Revision};
use crate::common::{TestEnv, exit};

/// A two-revision project whose second file's docstring says `Revises:` a
/// revision that is not its `down_revision`, as upstream files sometimes
/// do; the database is upgraded to head by real Alembic.
fn header_mismatch_project(env: &TestEnv) -> Option<AlembicProject> {
    let mut project = AlembicProject::new(env)?;
    project.revision(
        Revision::new("a10000000001", "users")
            .upgrade("op.create_table('user', sa.Column('id', sa.String(), primary_key=True))"),
    );
    project.revision(
        Revision::new("a10000000002", "notes")
            .down("a10000000001")
            .header_revises("0123456789ab")
            .upgrade(
                "op.create_table('note', sa.Column('id', sa.String(), primary_key=True), \
                 sa.Column('body', sa.Text()))",
            ),
    );
    project.upgrade("head").assert_success();
    Some(project)
}

fn codes(json: &serde_json::Value, field: &str) -> Vec<String> {
    json[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {json}"))
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_header_mismatch_is_a_note_not_a_verdict_on_the_database() {
    let env = TestEnv::new();
    let Some(project) = header_mismatch_project(&env) else {
        return;
    };
    project.configure_store(&env, "");
    let db = project.db_path();
    let db = db.to_str().unwrap();

    let out = env.run(&["--format", "json", "status", db]);
    out.expect(exit::OK);
    let json = out.json();
    assert_eq!(json["clean"], true);
    assert_eq!(json["schema_matches"], true);
    assert_eq!(json["class"], "at-heads");
    assert_eq!(json["fail_on"], "error");
    assert_eq!(codes(&json, "findings"), ["history.header-mismatch"]);
    assert_eq!(json["findings"][0]["severity"], "info");

    // The same finding under the same threshold gives the same code in
    // `history`.
    env.run(&["history"]).expect(exit::OK);
    env.run(&["status", "--fail-on", "info", db])
        .expect(exit::PROBLEMS);
    env.run(&["history", "--fail-on", "info"])
        .expect(exit::PROBLEMS);

    // Text: the note, then one verdict line; `-q` keeps only the verdict.
    let text = env.run(&["status", db]);
    let stdout = text.assert_success();
    assert!(
        stdout.contains("info: [history.header-mismatch]"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("clean: 1 info (fail on error)"),
        "{stdout}"
    );
    let quiet = env.run(&["-q", "status", db]);
    assert_eq!(quiet.assert_success(), "clean: 1 info (fail on error)\n");
    let failing = env.run(&["-q", "status", "--fail-on", "info", db]);
    failing.expect(exit::PROBLEMS);
    let lines: Vec<&str> = failing.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", failing.stdout);
    assert!(lines[0].starts_with("info: [history.header-mismatch]"));
    assert_eq!(lines[1], "FAIL: 1 info (fail on info)");
}

#[test]
fn the_findings_table_sets_severities_ignores_and_the_threshold() {
    let env = TestEnv::new();
    let Some(project) = header_mismatch_project(&env) else {
        return;
    };
    let db = project.db_path();
    let db = db.to_str().unwrap();

    // A project that wants file notes to fail its checks says so once.
    project.configure_store(
        &env,
        "[findings]\nseverity = { \"history.header-mismatch\" = \"error\" }\n",
    );
    let out = env.run(&["--format", "json", "status", db]);
    out.expect(exit::PROBLEMS);
    assert_eq!(out.json()["findings"][0]["severity"], "error");
    env.run(&["history"]).expect(exit::PROBLEMS);
    env.run(&["status", "--fail-on", "never", db])
        .expect(exit::OK);

    // An acknowledged finding is listed under `ignored`, with its reason,
    // and no longer counts, even at `--fail-on info`.
    project.configure_store(
        &env,
        "[findings]\nfail_on = \"info\"\n\
         [[findings.ignore]]\ncode = \"history.header-mismatch\"\nrevision = \"a10000000002\"\n\
         reason = \"upstream file, shipped as is\"\n",
    );
    let out = env.run(&["--format", "json", "status", db]);
    out.expect(exit::OK);
    let json = out.json();
    assert_eq!(json["fail_on"], "info");
    assert!(codes(&json, "findings").is_empty(), "{json}");
    assert_eq!(codes(&json, "ignored"), ["history.header-mismatch"]);
    assert_eq!(json["ignored"][0]["reason"], "upstream file, shipped as is");
    let text = env.run(&["status", db]);
    assert!(
        text.assert_success().contains(
            "ignored: [history.header-mismatch] a10000000002: upstream file, shipped as is"
        ),
        "{}",
        text.stdout
    );
    // A rule for another revision does not match.
    project.configure_store(
        &env,
        "[findings]\nfail_on = \"info\"\n\
         [[findings.ignore]]\ncode = \"history.header-mismatch\"\nrevision = \"a10000000001\"\n",
    );
    env.run(&["status", db]).expect(exit::PROBLEMS);
}

#[test]
fn a_misspelt_code_in_the_findings_table_is_bad_input() {
    let env = TestEnv::new();
    let Some(project) = header_mismatch_project(&env) else {
        return;
    };
    let db = project.db_path();
    project.configure_store(
        &env,
        "[findings]\nseverity = { \"history.header-mismatsh\" = \"off\" }\n",
    );
    env.run(&["status", db.to_str().unwrap()])
        .expect_error(exit::INPUT, &["migsnap.toml", "history.header-mismatsh"]);
    project.configure_store(&env, "[findings]\nfail_on = \"sometimes\"\n");
    env.run(&["history"])
        .expect_error(exit::INPUT, &["migsnap.toml"]);
}

#[test]
fn pending_revisions_are_a_warning_and_an_unversioned_database_an_error() {
    let env = TestEnv::new();
    let Some(mut project) = header_mismatch_project(&env) else {
        return;
    };
    project.configure_store(&env, "");
    project.revision(
        Revision::new("a10000000003", "tags")
            .down("a10000000002")
            .upgrade("op.create_table('tag', sa.Column('id', sa.String(), primary_key=True))"),
    );
    let db = project.db_path();
    let db = db.to_str().unwrap();
    // Behind: shown, and failing only for a project that asks for it.
    let out = env.run(&["--format", "json", "status", db]);
    out.expect(exit::OK);
    let json = out.json();
    assert_eq!(json["class"], "behind");
    assert!(codes(&json, "findings").contains(&"status.behind".to_owned()));
    env.run(&["status", "--fail-on", "warning", db])
        .expect(exit::PROBLEMS);

    // No alembic_version: `alembic upgrade` would create every table again.
    crate::common::exec(&project.db_path(), "DROP TABLE alembic_version");
    let out = env.run(&["--format", "json", "status", db]);
    out.expect(exit::PROBLEMS);
    assert_eq!(out.json()["class"], "unversioned");
}

#[test]
fn locate_fails_only_when_the_stamp_is_not_what_the_schema_is() {
    let env = TestEnv::new();
    let Some(project) = header_mismatch_project(&env) else {
        return;
    };
    project.configure_store(&env, "");
    let db = project.db_path();
    let db = db.to_str().unwrap();
    let out = env.run(&["--format", "json", "locate", db]);
    out.expect(exit::OK);
    assert_eq!(out.json()["clean"], true);

    // Stamped ahead of the schema: the finding names the truth and the
    // verified fix.
    crate::common::exec(
        &project.db_path(),
        "DROP TABLE note; UPDATE alembic_version SET version_num = 'a10000000002'",
    );
    let out = env.run(&["--format", "json", "locate", db]);
    out.expect(exit::PROBLEMS);
    let json = out.json();
    assert_eq!(codes(&json, "findings"), ["locate.stamp-mismatch"]);
    let finding = &json["findings"][0];
    assert!(
        finding["message"].as_str().unwrap().contains(
            "the schema is revision a10000000001, but the database has alembic_version a10000000002"
        ),
        "{finding}"
    );
    assert!(
        finding["hint"]
            .as_str()
            .unwrap()
            .contains("migsnap stamp --verify a10000000001"),
        "{finding}"
    );
}
