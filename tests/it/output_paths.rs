//! Paths in JSON are absolute everywhere (text may show them relative to
//! the project root); `locate` names its database; `stamp` takes the
//! database first, like every command; `replay` prints a summary, not a
//! line per revision, when not on a terminal.

use std::path::Path;

use crate::common::alembic::{AlembicProject, chat_app};
use crate::common::{TestEnv, exit};

/// Keys whose string values (or lists of strings) are file-system paths.
const PATH_KEYS: [&str; 6] = [
    "path",
    "database",
    "file",
    "root",
    "version_locations",
    "files",
];

/// Every path-like value under `value` that is not absolute, with where
/// it was found.
fn relative_paths(value: &serde_json::Value, at: &str, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, field) in map {
                let here = format!("{at}.{key}");
                if PATH_KEYS.contains(&key.as_str()) {
                    let strings: Vec<&str> = match field {
                        serde_json::Value::String(s) => vec![s.as_str()],
                        serde_json::Value::Array(items) => {
                            items.iter().filter_map(|i| i.as_str()).collect()
                        }
                        _ => Vec::new(),
                    };
                    // A tracked database's name is not a path.
                    for s in strings {
                        if s.contains('/') && !Path::new(s).is_absolute() {
                            found.push(format!("{here} = {s}"));
                        }
                    }
                }
                relative_paths(field, &here, found);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                relative_paths(item, &format!("{at}[{i}]"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn json_paths_are_absolute_for_every_migration_command() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    project.configure_store(&env, "");
    project.upgrade("head").assert_success();
    let db = AlembicProject::DB;
    env.run(&["track", "app", db]).assert_success();
    env.snapshot(&[db]);
    let checkout = "out/copy.db";
    std::fs::create_dir_all(env.join("out")).unwrap();

    let commands: Vec<Vec<&str>> = vec![
        vec!["status", db],
        vec!["locate", db],
        vec!["history"],
        vec!["replay"],
        vec!["lint"],
        vec!["show", "app"],
        vec!["log", "app"],
        vec!["track"],
        vec!["checkout", "app", "-o", checkout],
        vec!["bisect", "drift", "--revisions", db],
        vec!["stamp", db, chat_app::HEAD],
        vec!["repair", db],
        vec!["snapshot", db, "--allow-empty"],
        vec!["restore", "app"],
        vec!["guard", db, "--", "true"],
        vec!["test"],
        vec!["du"],
        vec!["fsck"],
    ];
    let mut found = Vec::new();
    for args in &commands {
        let mut all = vec!["--format", "json"];
        all.extend(args);
        let out = env.run(&all);
        assert!(
            out.status == exit::OK || out.status == exit::PROBLEMS,
            "{out:?}"
        );
        relative_paths(&out.json(), &args.join(" "), &mut found);
    }
    assert!(found.is_empty(), "relative paths in JSON: {found:#?}");

    // locate names the database it located, absolutely, however it was
    // given.
    let located = env.run(&["--format", "json", "locate", db]).ok_json();
    assert_eq!(
        located["database"].as_str().map(Path::new),
        Some(env.join(db).as_path())
    );
    // Text output may stay relative to the project root.
    let text = env.run(&["status", db]);
    assert!(text.stdout.contains("data/app.db"), "{text:?}");
}

#[test]
fn lint_json_names_files_absolutely_and_text_relatively() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    project.configure_store(&env, "");
    let out = env.run(&["--format", "json", "lint"]);
    let json = out.json();
    let files: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["file"].as_str())
        .collect();
    assert!(
        !files.is_empty(),
        "the fixture has findings about files: {json}"
    );
    for file in &files {
        assert!(Path::new(file).is_absolute(), "{file} in {json}");
    }
    let text = env.run(&["lint"]);
    assert!(
        !text.stdout.contains(&env.path().display().to_string()),
        "{text:?}"
    );
    assert!(text.stdout.contains("migrations/versions/"), "{text:?}");
}

#[test]
fn stamp_takes_the_database_first_and_hints_when_it_is_misplaced() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    project.configure_store(&env, "");
    project.upgrade(chat_app::ADD_ARCHIVED).assert_success();
    let db = AlembicProject::DB;

    // The database first, as for status, locate and repair.
    let out = env.run(&["--format", "json", "stamp", db, chat_app::ADD_ARCHIVED]);
    let json = out.json();
    out.expect(exit::OK);
    assert_eq!(json["unchanged"], true, "{json}");
    assert_eq!(
        json["database"].as_str().map(Path::new),
        Some(env.join(db).as_path())
    );
    // The old form still works.
    env.run(&["stamp", chat_app::ADD_ARCHIVED, "--db", db])
        .expect(exit::OK);
    // A database where the revision belongs, or a database alone: a usage
    // error that shows the order, not "unknown revision".
    env.run(&["stamp", chat_app::ADD_ARCHIVED, db])
        .expect_error(exit::USAGE, &["data/app.db is a database, not a revision"]);
    let out = env.run(&["stamp", chat_app::ADD_ARCHIVED, db]);
    assert!(
        out.stderr
            .contains(&format!("migsnap stamp {db} {}", chat_app::ADD_ARCHIVED)),
        "{out:?}"
    );
    let out = env.run(&["stamp", db]);
    out.expect(exit::USAGE);
    assert!(
        out.stderr.contains(&format!("migsnap stamp {db} REV")),
        "{out:?}"
    );
    // Nothing was written by the refused forms.
    assert_eq!(
        project.version_rows(),
        Some(vec![chat_app::ADD_ARCHIVED.to_owned()])
    );
}

#[test]
fn replay_prints_one_summary_line_when_not_on_a_terminal() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    project.configure_store(&env, "");
    let out = env.run(&["replay"]);
    out.expect(exit::OK);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    let references = chat_app::ALL.len();
    assert!(
        lines[0].starts_with(&format!(
            "{references} references (0 cached, {references} replayed in "
        )),
        "{out:?}"
    );
    assert!(
        !out.stderr.contains("replaying"),
        "no line per revision on stderr either: {out:?}"
    );
    let again = env.run(&["replay"]);
    assert!(
        again.assert_success().starts_with(&format!(
            "{references} references ({references} cached, 0 replayed"
        )),
        "{again:?}"
    );
}

#[test]
fn replay_and_test_take_the_database_like_every_command_and_keep_db() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    project.configure_store(&env, "");
    project.upgrade("heads").assert_success();
    let db = AlembicProject::DB;
    for args in [
        vec!["replay", db],
        vec!["replay", "--db", db],
        vec!["test", db, "--since", chat_app::MERGE],
        vec!["test", "--db", db, "--since", chat_app::MERGE],
    ] {
        env.run(&args).expect(exit::OK);
    }
    // Both forms at once is a usage error, not a silent choice.
    env.run(&["replay", db, "--db", db]).expect(exit::USAGE);
}
