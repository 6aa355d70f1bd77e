//! Odd but legal revision ids (issue 17 §3): ids that are not 12 hex
//! digits (13 characters, a word, mixed case), an id that is a prefix of
//! another, and two projects in one store that reuse the same simple id.
//! Every command takes such ids as they are: a version row is matched
//! exactly, never by prefix or case, and one project's references,
//! accepted variants and applied files never stand for the other's.

use crate::common::alembic::{AlembicProject, Revision, version_rows};
use crate::common::{TestEnv, exec, exit};

/// 13 hexadecimal digits, as some upstream histories have.
const BASE: &str = "1975ea83b712a";
/// A word.
const EMAIL: &str = "add_user_email";
/// Mixed case.
const TAGS: &str = "Ae1027a6acf";
/// The id every tutorial uses; `a1b2c3` is a prefix of it.
const NOTES: &str = "a1b2c3d4e5f6";

/// `user`, its `email`, `tag`, `note`, each under an odd id.
fn odd_project(env: &TestEnv) -> Option<AlembicProject> {
    let mut p = AlembicProject::new(env)?;
    p.revision(
        Revision::new(BASE, "users")
            .upgrade(
                r#"op.create_table("user", sa.Column("id", sa.Integer(), primary_key=True),
                                   sa.Column("name", sa.String(), nullable=False))"#,
            )
            .downgrade(r#"op.drop_table("user")"#),
    );
    p.revision(
        Revision::new(EMAIL, "user email")
            .down(BASE)
            .upgrade(r#"op.add_column("user", sa.Column("email", sa.String()))"#)
            .downgrade(
                r#"
                with op.batch_alter_table("user") as batch_op:
                    batch_op.drop_column("email")
                "#,
            ),
    );
    p.revision(
        Revision::new(TAGS, "tags")
            .down(EMAIL)
            .upgrade(r#"op.create_table("tag", sa.Column("id", sa.Integer(), primary_key=True))"#)
            .downgrade(r#"op.drop_table("tag")"#),
    );
    p.revision(
        Revision::new(NOTES, "notes")
            .down(TAGS)
            .upgrade(r#"op.create_table("note", sa.Column("id", sa.Integer(), primary_key=True))"#)
            .downgrade(r#"op.drop_table("note")"#),
    );
    p.configure_store(env, "");
    Some(p)
}

fn json_of(env: &TestEnv, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    (out.status, out.json())
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn history_status_locate_and_stamp_take_odd_ids_as_they_are() {
    let env = TestEnv::new();
    let Some(project) = odd_project(&env) else {
        return;
    };
    let db = project.db_path();
    let path = db.to_str().unwrap();

    let (code, history) = json_of(&env, &["history"]);
    assert_eq!(code, exit::OK, "{history}");
    let order: Vec<String> = history["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["revision"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(order, [BASE, EMAIL, TAGS, NOTES]);
    assert_eq!(history["findings"], serde_json::json!([]), "{history}");

    project.upgrade(EMAIL).assert_success();
    let (code, status) = json_of(&env, &["status", path]);
    assert_eq!(code, exit::OK, "behind is a warning: {status}");
    assert_eq!(status["class"], "behind");
    assert_eq!(strings(&status["position"]["pending"]), [TAGS, NOTES]);
    assert_eq!(status["schema_matches"], true);
    let (code, located) = json_of(&env, &["locate", path]);
    assert_eq!(code, exit::OK, "{located}");
    assert_eq!(located["exact"][0]["targets"], serde_json::json!([EMAIL]));

    // Each reference is under its id, spelled as declared.
    let refs: Vec<String> = env.refs().into_iter().map(|(name, _)| name).collect();
    for id in [BASE, EMAIL, TAGS, NOTES] {
        assert!(
            refs.contains(&format!("replay/default/revs/{id}")),
            "{id}: {refs:?}"
        );
    }

    // The verified stamp takes the ids whole: the base's 13 characters,
    // the mixed case.
    exec(&db, "DROP TABLE alembic_version");
    let (code, stamped) = json_of(&env, &["stamp", path, EMAIL]);
    assert_eq!(code, exit::OK, "{stamped}");
    assert_eq!(version_rows(&db), Some(vec![EMAIL.to_owned()]));
    project.upgrade("head").assert_success();
    assert_eq!(version_rows(&db), Some(vec![NOTES.to_owned()]));
    exec(&db, "DROP TABLE note; DROP TABLE alembic_version");
    let (code, stamped) = json_of(&env, &["stamp", path, TAGS]);
    assert_eq!(code, exit::OK, "{stamped}");
    assert_eq!(version_rows(&db), Some(vec![TAGS.to_owned()]));
    // The same letters in another case are another id, not a spelling.
    let out = env.run(&["stamp", path, &TAGS.to_lowercase()]);
    out.expect_error(
        exit::INPUT,
        &["no revision 'ae1027a6acf' in the migration history"],
    );
}

// A version row is an id as written: `a1b2c3` is not `a1b2c3d4e5f6`, and
// `ae1027a6acf` is not `Ae1027a6acf`, though a person may type a prefix.
#[test]
fn a_version_row_is_matched_exactly_never_by_prefix_or_case() {
    let env = TestEnv::new();
    let Some(project) = odd_project(&env) else {
        return;
    };
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade("head").assert_success();
    let (code, status) = json_of(&env, &["status", path]);
    assert_eq!(code, exit::OK, "{status}");
    assert_eq!(status["class"], "at-heads");

    for (row, nearest) in [("a1b2c3", NOTES), ("ae1027a6acf", NOTES)] {
        exec(
            &db,
            &format!("UPDATE alembic_version SET version_num = '{row}'"),
        );
        let (code, status) = json_of(&env, &["status", path]);
        assert_eq!(code, exit::PROBLEMS, "{row}: {status}");
        assert_eq!(status["class"], "unknown-revision", "{row}: {status}");
        assert_eq!(strings(&status["position"]["unknown"]), [row]);
        assert_eq!(status["comparison"]["inferred"], true, "{row}: {status}");
        assert_eq!(strings(&status["comparison"]["targets"]), [nearest]);
        let (code, located) = json_of(&env, &["locate", path]);
        assert_eq!(code, exit::PROBLEMS, "{row}: {located}");
        assert_eq!(strings(&located["stamped"]), [row]);
        assert_eq!(located["stamped_matches"], false);
        // repair without --to neither takes the row for the id it prefixes
        // nor applies towards the nearest revision.
        let (code, repair) = json_of(&env, &["repair", path]);
        assert_eq!(code, exit::PROBLEMS, "{row}: {repair}");
        assert_eq!(repair["inferred"], true);
    }
    // A person typing a prefix means the revision it names, as in Alembic.
    let (code, stamped) = json_of(&env, &["stamp", path, "a1b2c3"]);
    assert_eq!(code, exit::OK, "{stamped}");
    assert_eq!(strings(&stamped["targets"]), [NOTES]);
    assert_eq!(strings(&stamped["unknown"]), ["ae1027a6acf"]);
    assert_eq!(version_rows(&db), Some(vec![NOTES.to_owned()]));
}

#[test]
fn bisect_and_lint_name_odd_ids() {
    let env = TestEnv::new();
    let Some(project) = odd_project(&env) else {
        return;
    };
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade("head").assert_success();
    exec(&db, "ALTER TABLE user DROP COLUMN email");

    let (code, bisect) = json_of(&env, &["bisect", "drift", "--revisions", path]);
    assert_eq!(code, exit::PROBLEMS, "{bisect}");
    assert_eq!(bisect["first_bad"], EMAIL, "{bisect}");
    assert_eq!(bisect["last_good"], BASE, "{bisect}");

    // The revisions after the word id are reviewed, by their ids.
    let (code, lint) = json_of(&env, &["lint", "--since", EMAIL]);
    assert_eq!(code, exit::OK, "{lint}");
    assert_eq!(strings(&lint["revisions_checked"]), [TAGS, NOTES]);
    let (code, lint) = json_of(&env, &["lint", "--since", BASE]);
    assert_eq!(strings(&lint["revisions_checked"]), [EMAIL, TAGS, NOTES]);
    // Adding a column to `user`, which the base created, is what the
    // guide forbids; the finding names the word id.
    assert_eq!(code, exit::PROBLEMS, "{lint}");
    assert!(
        lint["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "lint.alters-existing-table" && f["revision"] == EMAIL),
        "{lint}"
    );
}

/// A second project in `other/` of the same store, whose first revision
/// reuses [`NOTES`]'s id for another table.
fn other_project(env: &TestEnv) -> Option<AlembicProject> {
    let mut p = AlembicProject::new_in(env, "other")?;
    p.revision(
        Revision::new(NOTES, "invoices")
            .upgrade(
                r#"op.create_table("invoice", sa.Column("id", sa.Integer(), primary_key=True),
                                   sa.Column("total", sa.Integer()))"#,
            )
            .downgrade(r#"op.drop_table("invoice")"#),
    );
    Some(p)
}

/// A first project at the root whose only revision is [`NOTES`].
fn root_project(env: &TestEnv) -> Option<AlembicProject> {
    let mut p = AlembicProject::new(env)?;
    p.revision(
        Revision::new(NOTES, "notes")
            .upgrade(r#"op.create_table("note", sa.Column("id", sa.Integer(), primary_key=True))"#)
            .downgrade(r#"op.drop_table("note")"#),
    );
    p.configure_store(env, "");
    Some(p)
}

#[test]
fn two_projects_reusing_an_id_keep_their_references_and_variants_apart() {
    let env = TestEnv::new();
    let Some(root) = root_project(&env) else {
        return;
    };
    let Some(other) = other_project(&env) else {
        return;
    };
    root.upgrade("head").assert_success();
    other.upgrade("head").assert_success();
    let (root_db, other_db) = (root.db_path(), other.db_path());
    let (root_path, other_path) = (root_db.to_str().unwrap(), other_db.to_str().unwrap());
    let ini = "other/alembic.ini";

    let (code, status) = json_of(&env, &["status", root_path]);
    assert_eq!(code, exit::OK, "{status}");
    let (code, status) = json_of(&env, &["status", "-c", ini, other_path]);
    assert_eq!(
        code,
        exit::OK,
        "the other project's own reference: {status}"
    );

    // Both references are held at once, under one id each.
    let refs = env.refs();
    let named: Vec<&(String, String)> = refs
        .iter()
        .filter(|(name, _)| name.ends_with(&format!("/revs/{NOTES}")))
        .collect();
    assert_eq!(named.len(), 2, "{refs:?}");
    // Sorted by name: the other project's namespace comes first.
    assert!(
        named[0].0.starts_with("replay/default/projects/"),
        "{refs:?}"
    );
    assert_eq!(named[1].0, format!("replay/default/revs/{NOTES}"));
    assert_ne!(named[0].1, named[1].1);

    // Neither overwrote the other: each replays from the cache, and the
    // other project found from its own folder is the same project.
    for (cwd, args) in [
        (env.path().to_path_buf(), vec!["replay", root_path]),
        (
            env.path().to_path_buf(),
            vec!["replay", "-c", ini, other_path],
        ),
        (env.join("other"), vec!["replay", other_path]),
    ] {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(&args);
        let out = env.run_in(&cwd, &all, &[]);
        let json = out.json();
        assert_eq!(out.status, exit::OK, "{args:?}: {json}");
        assert_eq!(json["ran_migrations"], false, "{args:?}: {json}");
    }
    assert_eq!(env.refs(), refs);

    // A variant accepted for one project is not the other's.
    for db in [&root_db, &other_db] {
        exec(db, "CREATE TABLE scratch (id INTEGER PRIMARY KEY)");
    }
    env.run(&["accept", root_path, "--yes"]).assert_success();
    let (code, status) = json_of(&env, &["status", root_path]);
    assert_eq!(code, exit::OK, "{status}");
    assert!(status["comparison"]["variant"].is_string(), "{status}");
    let (code, status) = json_of(&env, &["status", "-c", ini, other_path]);
    assert_eq!(code, exit::PROBLEMS, "{status}");
    assert!(status["comparison"]["variant"].is_null(), "{status}");
}

// A snapshot of one project's database records the file of its
// `a1b2c3d4e5f6`; the other project's file with that id was not edited.
#[test]
fn lint_never_takes_another_projects_applied_file_for_an_edit() {
    let env = TestEnv::new();
    let Some(root) = root_project(&env) else {
        return;
    };
    let Some(other) = other_project(&env) else {
        return;
    };
    root.upgrade("head").assert_success();
    let root_db = root.db_path();
    env.run(&["track", "app", root_db.to_str().unwrap()])
        .assert_success();
    env.run(&["snapshot", "app"]).assert_success();
    let ini = "other/alembic.ini";
    let _ = other;

    let (_, lint) = json_of(&env, &["lint", "-c", ini]);
    assert!(
        !lint["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "lint.edited-after-applied"),
        "{lint}"
    );
    // Its own project's edit is still found.
    let file = root.versions_dir().join(format!("{NOTES}_notes.py"));
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}\n# edited\n")).unwrap();
    let (code, lint) = json_of(&env, &["lint"]);
    assert_eq!(code, exit::PROBLEMS, "{lint}");
    assert!(
        lint["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "lint.edited-after-applied" && f["revision"] == NOTES),
        "{lint}"
    );
}
