//! `migsnap adopt` on a real Alembic project: hand-made objects become a
//! revision that real Alembic replays on an empty database (the same
//! schema) and downgrades (exactly those objects gone), and the database
//! itself is clean afterwards.

use std::path::{Path, PathBuf};

use crate::common::alembic::{AlembicProject, chat_app, version_rows};
use crate::common::{TestEnv, exec};

/// What a fix script might make by hand: a table with a foreign key, a
/// unique constraint, an index and rows, and a column on an existing table.
const HAND_MADE: &str = "
    INSERT INTO user VALUES ('u1', 'Ann', 'ann@example.com', 'admin', 1);
    CREATE TABLE feature (
        id INTEGER NOT NULL,
        user_id VARCHAR NOT NULL,
        label VARCHAR(40) NOT NULL,
        score NUMERIC(10, 2),
        meta JSON,
        created DATETIME DEFAULT CURRENT_TIMESTAMP,
        PRIMARY KEY (id),
        UNIQUE (label),
        FOREIGN KEY (user_id) REFERENCES user (id) ON DELETE CASCADE
    );
    CREATE INDEX ix_feature_user_id ON feature (user_id);
    INSERT INTO feature (id, user_id, label, score) VALUES (1, 'u1', 'beta', 2.5), (2, 'u1', 'dark', NULL);
    ALTER TABLE chat ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT 0;
";

fn adopted_file(project: &AlembicProject) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(project.versions_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("_adopt_feature.py"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.pop().unwrap()
}

/// Migrates a new database at `path` with real Alembic.
fn alembic_on(project: &AlembicProject, path: &Path, args: &[&str]) {
    let url = format!("sqlite:///{}", path.display());
    project
        .run_with(args, &[("DATABASE_URL", &url)])
        .assert_success();
}

/// `migsnap diff` of two files: exit 0 when they mean the same.
fn same_schema(env: &TestEnv, a: &Path, b: &Path) {
    let out = env.run(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(
        out.status,
        0,
        "{} and {} differ: {out:?}",
        a.display(),
        b.display()
    );
}

#[test]
fn adopted_revision_replays_downgrades_and_leaves_the_database_clean() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    project.configure_store(&env, "");
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade("head").assert_success();
    exec(&db, HAND_MADE);

    // A dry run prints the file and writes nothing.
    let dry = env.run(&["adopt", path, "-m", "adopt feature", "--dry-run"]);
    assert_eq!(dry.status, 0, "{dry:?}");
    for needle in [
        "Revises: 7a9c1e3f5b67",
        "down_revision: Union[str, Sequence[str], None] = '7a9c1e3f5b67'",
        "op.create_table(\n        \"feature\",",
        "sa.Column(\"label\", sa.String(length=40), nullable=False)",
        "sa.Column(\"score\", sa.Numeric(precision=10, scale=2), nullable=True)",
        "sa.ForeignKeyConstraint([\"user_id\"], [\"user.id\"], ondelete=\"CASCADE\")",
        "op.create_index(\"ix_feature_user_id\", \"feature\", [\"user_id\"], unique=False)",
        "with op.batch_alter_table(\"chat\", recreate=\"never\") as batch_op:",
        "batch_op.add_column(sa.Column(\"pinned\", sa.Boolean(), nullable=False, server_default=sa.text(\"0\")))",
        "op.drop_table(\"feature\")",
        "batch_op.drop_column(\"pinned\")",
    ] {
        assert!(dry.stdout.contains(needle), "{needle}\n---\n{}", dry.stdout);
    }
    assert_eq!(
        std::fs::read_dir(project.versions_dir()).unwrap().count(),
        chat_app::ALL.len()
    );

    let out = env.run(&["--format", "json", "adopt", path, "-m", "adopt feature"]);
    let report = out.json();
    assert_eq!(out.status, 0, "{report}");
    let revision = report["revision"].as_str().unwrap().to_owned();
    assert_eq!(revision.len(), 12);
    assert!(revision.bytes().all(|b| b.is_ascii_hexdigit()));
    // The documented field set (docs/cli.md), pinned as report_shapes.rs
    // pins the others (which avoid Python; this needs Alembic).
    let mut fields: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "adopted",
            "database",
            "down_revision",
            "path",
            "project_template",
            "revision",
            "source",
            "stamp",
            "written"
        ]
    );
    assert_eq!(report["written"], true);
    assert_eq!(report["down_revision"], chat_app::HEAD);
    assert_eq!(report["project_template"], true);
    assert_eq!(report["stamp"]["stamped"], true);
    let file = adopted_file(&project);
    assert!(
        file.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&revision)
    );

    // (c) The real database: stamped at the new revision, rows kept, clean.
    assert_eq!(version_rows(&db), Some(vec![revision.clone()]));
    let count: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM feature", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 2);
    let status = env.run(&["status", path]);
    assert_eq!(status.status, 0, "{status:?}");
    assert_eq!(project.head_revisions(), vec![revision.clone()]);

    // (a) An empty database upgraded by real Alembic has the same schema.
    let fresh = env.join("fresh.db");
    alembic_on(&project, &fresh, &["upgrade", "head"]);
    same_schema(&env, &db, &fresh);

    // (b) One step down takes exactly the adopted objects away: the
    // schema of the old head.
    alembic_on(&project, &fresh, &["downgrade", "-1"]);
    let old_head = env.join("old-head.db");
    alembic_on(&project, &old_head, &["upgrade", chat_app::HEAD]);
    same_schema(&env, &old_head, &fresh);
    assert_eq!(version_rows(&fresh), Some(vec![chat_app::HEAD.to_owned()]));
}

#[test]
fn adopt_refuses_missing_objects_and_a_database_with_nothing_extra() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    project.configure_store(&env, "");
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade("head").assert_success();

    let nothing = env.run(&["adopt", path, "-m", "nothing"]);
    nothing.expect_error(3, &["nothing to adopt"]);

    exec(
        &db,
        "CREATE TABLE extra (id INTEGER PRIMARY KEY); DROP INDEX chat_folder_id_idx;",
    );
    let missing = env.run(&["adopt", path, "-m", "half"]);
    missing.expect_error(3, &["adopt takes only extra objects"]);
    assert!(
        missing.stderr.contains("hint: `migsnap repair`"),
        "{missing:?}"
    );
    assert_eq!(
        std::fs::read_dir(project.versions_dir()).unwrap().count(),
        chat_app::ALL.len(),
        "nothing written"
    );
    assert_eq!(version_rows(&db), Some(vec![chat_app::HEAD.to_owned()]));
}

// The file is judged by replaying it: when the project's template makes a
// revision that does not run, the stamp fails and the file goes again.
#[test]
fn a_revision_that_does_not_replay_is_removed_and_nothing_stamped() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    project.configure_store(&env, "");
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade("head").assert_success();
    exec(
        &db,
        "CREATE TABLE extra (id INTEGER NOT NULL, PRIMARY KEY (id));",
    );
    let template = project.migrations_dir().join("script.py.mako");
    let text = std::fs::read_to_string(&template).unwrap();
    std::fs::write(&template, format!("import no_such_module_here\n{text}")).unwrap();

    let out = env.run(&["adopt", path, "-m", "broken"]);
    out.expect_error(3, &["was removed again"]);
    assert!(out.stderr.contains("no_such_module_here"), "{out:?}");
    assert_eq!(
        std::fs::read_dir(project.versions_dir()).unwrap().count(),
        chat_app::ALL.len()
    );
    assert_eq!(version_rows(&db), Some(vec![chat_app::HEAD.to_owned()]));
}

// An unknown version row plus hand-made tables (issue 13's third case):
// adopt compares with the head, whatever the row says, and its stamp
// replaces the row. Without a script.py.mako, the generic template serves.
#[test]
fn adopt_fixes_an_unknown_row_with_hand_made_tables_without_a_template() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    project.configure_store(&env, "");
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade("head").assert_success();
    exec(
        &db,
        "CREATE TABLE notes (id INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (id));
         INSERT INTO notes VALUES (1, 'keep me');
         UPDATE alembic_version SET version_num = 'feedfacecafe';",
    );
    std::fs::remove_file(project.migrations_dir().join("script.py.mako")).unwrap();
    env.run(&["status", path]).expect(1);

    let out = env.run(&["--format", "json", "adopt", path, "-m", "adopt notes"]);
    let report = out.json();
    assert_eq!(out.status, 0, "{report}");
    assert_eq!(report["project_template"], false);
    let source = report["source"].as_str().unwrap();
    assert!(source.contains("Revises: 7a9c1e3f5b67"), "{source}");
    let revision = report["revision"].as_str().unwrap().to_owned();
    assert_eq!(version_rows(&db), Some(vec![revision]));
    env.run(&["status", path]).expect(0);
    let fresh = env.join("fresh.db");
    alembic_on(&project, &fresh, &["upgrade", "head"]);
    same_schema(&env, &db, &fresh);
}

// The file is named as `alembic revision` names it in this project: the
// project's file_template and truncate_slug_length, compared with a file
// real Alembic writes.
#[test]
fn the_revision_file_follows_the_projects_file_template() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    project.configure_store(&env, "");
    let ini = std::fs::read_to_string(project.ini_path()).unwrap();
    let ini = ini.replacen(
        "[alembic]\n",
        "[alembic]\nfile_template = %%(year)d_%%(month).2d_%%(day).2d-%%(rev)s_%%(slug)s\ntruncate_slug_length = 10\n",
        1,
    );
    std::fs::write(project.ini_path(), ini).unwrap();
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade("head").assert_success();
    exec(
        &db,
        "CREATE TABLE notes (id INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (id));",
    );

    let message = "adopt the notes feature";
    let listed = || -> Vec<String> {
        std::fs::read_dir(project.versions_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let before = listed();
    project
        .run(&["revision", "-m", message, "--rev-id", "0123456789ab"])
        .assert_success();
    let alembic_name = listed()
        .into_iter()
        .find(|n| !before.contains(n))
        .expect("alembic wrote a file");
    std::fs::remove_file(project.versions_dir().join(&alembic_name)).unwrap();

    let out = env.run(&["--format", "json", "adopt", path, "-m", message]);
    let report = out.json();
    assert_eq!(out.status, 0, "{report}");
    let revision = report["revision"].as_str().unwrap();
    let ours = std::path::Path::new(report["path"].as_str().unwrap())
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(ours.ends_with("_adopt_the_.py"), "{ours}");
    assert_eq!(
        ours.replace(revision, "0123456789ab"),
        alembic_name,
        "named as alembic revision names it"
    );
    env.run(&["status", path]).expect(0);
}
