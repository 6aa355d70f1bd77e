//! Security: hostile identifiers cannot inject SQL through generated
//! scripts, written files are never more readable than the database they
//! came from, commands named by someone else's `migsnap.toml` are not run,
//! and restore and checkout never write through a symbolic link.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::common::{Journal, TestEnv, chmod, exec, exit, file_hash, is_root, mode, skip};

/// `"name"` with embedded quotes doubled, as SQLite quotes an identifier.
fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table name that closes the quote and runs its own statement.
const EVIL_TABLE: &str = "x\"; DROP TABLE users; --";
/// Column names with a quote, a newline, spaces, unicode and a keyword.
const EVIL_COLUMNS: [&str; 4] = ["we\"ird", "new\nline", "ünï cødé", "select"];

/// A SQL-folder project (no Python) whose one migration creates `users` and
/// the hostile table, with every hostile column, a hostile index and a
/// trigger; `user_version = 1` marks it applied.
fn hostile_project(env: &TestEnv) -> String {
    let columns: Vec<String> = EVIL_COLUMNS
        .iter()
        .map(|c| format!("{} TEXT", q(c)))
        .collect();
    let migration = format!(
        "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);\n\
         CREATE TABLE {t}(id INTEGER PRIMARY KEY, {cols});\n\
         CREATE INDEX {i} ON {t}({c0});\n",
        t = q(EVIL_TABLE),
        cols = columns.join(", "),
        i = q("i\"; DELETE FROM users; --"),
        c0 = q(EVIL_COLUMNS[0]),
    );
    std::fs::create_dir(env.join("sql")).unwrap();
    std::fs::write(env.join("sql/0001_hostile.sql"), &migration).unwrap();
    std::fs::write(
        env.join("migsnap.toml"),
        "[migrations]\nkind = \"sql\"\ndir = \"sql\"\n",
    )
    .unwrap();
    migration
}

#[test]
fn repair_apply_quotes_hostile_table_and_column_names() {
    let env = TestEnv::with_store();
    hostile_project(&env);
    // The database lost two hostile columns and the hostile index: repair
    // must rebuild the hostile table (it is not an ADD COLUMN away because
    // the index goes too) and keep `users` and every row.
    let db = env.join("app.db");
    exec(
        &db,
        &format!(
            "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO users VALUES (1, 'ann'), (2, 'bob');
             CREATE TABLE {t}(id INTEGER PRIMARY KEY, {c0} TEXT, {c1} TEXT);
             INSERT INTO {t} VALUES (1, 'a''; DROP TABLE users; --', 'b');
             PRAGMA user_version = 1;",
            t = q(EVIL_TABLE),
            c0 = q(EVIL_COLUMNS[0]),
            c1 = q(EVIL_COLUMNS[1]),
        ),
    );
    chmod(&db, 0o600);
    env.run(&["track", "app", "app.db"]).assert_success();

    // The dry run prints the plan and changes nothing.
    let before = file_hash(&db);
    let plan = env.run(&["repair", "app"]);
    plan.expect(exit::PROBLEMS);
    assert!(plan.stdout.contains(&q(EVIL_TABLE)), "{}", plan.stdout);
    assert_eq!(file_hash(&db), before);

    let out = env.run(&["--format", "json", "repair", "app", "--apply"]);
    let json = out.ok_json();
    assert_eq!(json["applied"], true, "{json}");
    // Nothing was injected: users and its rows are there, the hostile row
    // kept its text, and the database now means the reference schema.
    let conn = Connection::open(&db).unwrap();
    let users: i64 = conn
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 2);
    let kept: String = conn
        .query_row(
            &format!("SELECT {} FROM {}", q(EVIL_COLUMNS[0]), q(EVIL_TABLE)),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, "a'; DROP TABLE users; --");
    drop(conn);
    env.run(&["status", "app"]).expect(exit::OK);
    assert_eq!(crate::common::integrity_check(&db), "ok");
    // The rewritten file keeps the database's 0600.
    assert_eq!(mode(&db), 0o600);

    // `diff --format sql` from the repaired database back to the damaged
    // state's snapshot is a script that also runs cleanly.
    let safety = json["safety_snapshot"].as_str().unwrap().to_owned();
    env.run(&["checkout", &safety, "-o", "old.db"])
        .assert_success();
    let sql = env.run(&["diff", "--format", "sql", "app.db", "old.db"]);
    sql.expect(exit::PROBLEMS);
    let copy = env.join("copy.db");
    std::fs::copy(&db, &copy).unwrap();
    Connection::open(&copy)
        .unwrap()
        .execute_batch(&sql.stdout)
        .unwrap();
    env.run(&["diff", "copy.db", "old.db"]).expect(exit::OK);
    let names: Vec<String> = Connection::open(&copy)
        .unwrap()
        .prepare("SELECT name FROM users ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(names, ["ann", "bob"]);
}

/// Every file and directory under `dir`, with its permission bits.
fn modes_under(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        out.push((path.clone(), meta.permissions().mode() & 0o777));
        if meta.is_dir() {
            out.extend(modes_under(&path));
        }
    }
    out
}

/// Runs migsnap under `umask 000`, so nothing it writes is narrow by luck.
fn run_with_open_umask(env: &TestEnv, args: &[&str]) -> crate::common::Output {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(crate::common::BIN)
        .args(args)
        .current_dir(env.path())
        .env("NO_COLOR", "1")
        .env_remove("MIGSNAP_STORE");
    let out = cmd.output().unwrap();
    crate::common::Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        status: out.status.code().unwrap_or(-1),
        command: format!("(umask 000) migsnap {}", args.join(" ")),
    }
}

#[test]
fn nothing_written_is_wider_than_a_0600_database() {
    let env = TestEnv::new();
    run_with_open_umask(&env, &["init"]).assert_success();
    let db = env.make_db("secret.db", Journal::Wal, 40);
    chmod(&db, 0o600);
    let s1 = {
        let out = run_with_open_umask(&env, &["--format", "json", "snapshot", "secret.db"]);
        out.ok_json()["id"].as_str().unwrap().to_owned()
    };
    exec(&db, "DELETE FROM items WHERE id > 10;");
    run_with_open_umask(&env, &["snapshot", "secret"]).assert_success();
    run_with_open_umask(&env, &["tag", "t1", &s1]).assert_success();
    run_with_open_umask(&env, &["gc", "--grace", "0s"]).assert_success();

    // The store: the directory 0700 and nothing in it readable by others.
    for (path, bits) in modes_under(&env.store_dir()) {
        assert_eq!(bits & 0o077, 0, "{} is {bits:o}", path.display());
    }
    assert_eq!(mode(&env.store_dir()), 0o700);

    // A checkout of it, into a new file and over an existing 0644 one.
    run_with_open_umask(&env, &["checkout", &s1, "-o", "copy.db"]).assert_success();
    assert_eq!(mode(&env.join("copy.db")), 0o600);
    std::fs::write(env.join("over.db"), b"x").unwrap();
    chmod(&env.join("over.db"), 0o644);
    run_with_open_umask(&env, &["checkout", &s1, "-o", "over.db", "--force"]).assert_success();
    assert!(
        mode(&env.join("over.db")) & 0o077 == 0,
        "checkout --force widened a 0600 snapshot to {:o}",
        mode(&env.join("over.db"))
    );

    // A restore in place keeps 0600, and so does a restore after the file
    // was deleted (the mode then comes from the snapshot).
    run_with_open_umask(&env, &["restore", &s1]).assert_success();
    assert_eq!(mode(&db), 0o600);
    std::fs::remove_file(&db).unwrap();
    run_with_open_umask(&env, &["restore", &s1, "secret"]).assert_success();
    assert_eq!(mode(&db), 0o600);
    // No sidecar or temporary file was left readable either.
    for entry in std::fs::read_dir(env.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("secret.db") || name.starts_with(".migsnap-restore-") {
            assert_eq!(mode(&path) & 0o077, 0, "{name} is {:o}", mode(&path));
        }
    }
}

/// A project whose `migsnap.toml` names an `upgrade` command that leaves a
/// marker file when run; the file is given to `uid`.
fn project_with_command(env: &TestEnv, key: &str, uid: u32) -> PathBuf {
    env.run(&["init"]).assert_success();
    std::fs::create_dir(env.join("sql")).unwrap();
    std::fs::write(env.join("sql/0001_t.sql"), "CREATE TABLE t(id INTEGER);").unwrap();
    let marker = env.join("pwned");
    let setting = match key {
        "upgrade" => format!("upgrade = \"touch {}\"", marker.display()),
        _ => format!("python = \"{}\"", "/bin/true"),
    };
    let config = env.join("migsnap.toml");
    std::fs::write(
        &config,
        format!("[migrations]\nkind = \"sql\"\ndir = \"sql\"\n{setting}\n"),
    )
    .unwrap();
    std::os::unix::fs::chown(&config, Some(uid), Some(uid)).unwrap();
    marker
}

#[test]
fn commands_from_a_migsnap_toml_owned_by_someone_else_are_refused() {
    if !is_root() {
        skip("giving a file away needs root");
        return;
    }
    let env = TestEnv::new();
    let marker = project_with_command(&env, "upgrade", 65534);
    let config = env.join("migsnap.toml");
    let before = env.store_state();
    for args in [&["replay"][..], &["log"], &["history"]] {
        let out = env.run(args);
        out.expect_error(
            exit::REFUSED,
            &[
                &config.display().to_string(),
                "owned by uid 65534",
                "sets upgrade",
                "refusing to run commands it names",
            ],
        );
        assert!(
            out.stderr.contains(&format!(
                "hint: if you trust it, add its directory to MIGSNAP_SAFE_DIRECTORIES (`export MIGSNAP_SAFE_DIRECTORIES={}`)",
                env.path().display()
            )),
            "{}",
            out.stderr
        );
        assert!(!marker.exists(), "{args:?} ran the untrusted command");
    }
    assert_eq!(env.store_state(), before);
    let out = env.run(&["replay"]);
    insta::assert_snapshot!(env.redact(&out.stderr).replace("(nobody)", "(NAME)").replace("(nogroup)", "(NAME)"), @r"
    error: [TMP]/migsnap.toml is owned by uid 65534 (NAME), not by you or root, and sets upgrade; refusing to run commands it names
    hint: if you trust it, add its directory to MIGSNAP_SAFE_DIRECTORIES (`export MIGSNAP_SAFE_DIRECTORIES=[TMP]`), or chown the file to yourself
    ");

    // Listing the directory (or `*`) trusts it; the command then runs.
    let dir = env.path().display().to_string();
    let trusted = env.run_in(
        env.path(),
        &["replay"],
        &[("MIGSNAP_SAFE_DIRECTORIES", &format!("/nonexistent:{dir}"))],
    );
    assert!(
        marker.exists(),
        "a trusted command did not run: {trusted:?}"
    );
    std::fs::remove_file(&marker).unwrap();
    // Another directory in the list does not.
    env.run_in(
        env.path(),
        &["replay"],
        &[("MIGSNAP_SAFE_DIRECTORIES", "/tmp/elsewhere")],
    )
    .expect(exit::REFUSED);
    assert!(!marker.exists());
    // A file owned by root (or by us) is trusted as it is.
    std::os::unix::fs::chown(&config, Some(0), Some(0)).unwrap();
    env.run(&["replay"]);
    assert!(marker.exists(), "a root-owned config was not honoured");
}

#[test]
fn a_python_setting_from_someone_elses_migsnap_toml_is_refused() {
    if !is_root() {
        skip("giving a file away needs root");
        return;
    }
    let env = TestEnv::new();
    project_with_command(&env, "python", 65534);
    env.run(&["status"]).expect_error(
        exit::REFUSED,
        &["migsnap.toml", "owned by uid 65534", "sets python"],
    );
    // The store's own config.toml is held to the same rule.
    std::fs::write(
        env.join("migsnap.toml"),
        "[migrations]\nkind = \"sql\"\ndir = \"sql\"\n",
    )
    .unwrap();
    let store_config = env.store_dir().join("config.toml");
    std::fs::write(
        &store_config,
        "[databases.app]\npath = \"app.db\"\n[databases.app.migrations]\nupgrade = \"touch x\"\n",
    )
    .unwrap();
    std::os::unix::fs::chown(&store_config, Some(65534), Some(65534)).unwrap();
    env.run(&["log"]).expect_error(
        exit::REFUSED,
        &[
            &store_config.display().to_string(),
            "owned by uid 65534",
            "sets upgrade",
        ],
    );
    // Without command settings, a foreign file is only data and is read.
    std::fs::write(&store_config, "[databases.app]\npath = \"app.db\"\n").unwrap();
    env.run(&["track"]).assert_success();
}

#[test]
fn checkout_never_writes_through_a_symlink() {
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 10);
    let s1 = env.snapshot(&["app.db"]);
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();

    // A link to an existing file, with and without --force.
    std::os::unix::fs::symlink(&victim, env.join("out.db")).unwrap();
    for args in [
        &["checkout", &s1, "-o", "out.db"][..],
        &["checkout", &s1, "-o", "out.db", "--force"],
    ] {
        env.run(args)
            .expect_error(exit::REFUSED, &["out.db", "symbolic link"]);
    }
    // A dangling link: following it would create a file outside.
    let dangling = outside.path().join("created");
    std::os::unix::fs::symlink(&dangling, env.join("dangling.db")).unwrap();
    env.run(&["checkout", &s1, "-o", "dangling.db"])
        .expect_error(exit::REFUSED, &["dangling.db", "symbolic link"]);
    assert!(!dangling.exists(), "checkout created a file through a link");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(env.restore_temps(env.path()), Vec::<String>::new());
}

#[test]
fn restore_removes_symlinked_sidecars_instead_of_following_them() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 20);
    let s1 = env.snapshot(&["app.db"]);
    exec(&db, "DELETE FROM items;");
    let outside = tempfile::tempdir().unwrap();
    let mut victims = Vec::new();
    for suffix in ["-wal", "-shm", "-journal"] {
        let victim = outside.path().join(format!("victim{suffix}"));
        std::fs::write(&victim, format!("precious{suffix}")).unwrap();
        std::os::unix::fs::symlink(&victim, env.join(format!("app.db{suffix}"))).unwrap();
        victims.push((victim, format!("precious{suffix}")));
    }
    let out = env.run(&["restore", &s1]);
    eprintln!(
        "restore with symlinked sidecars: exit {}: {}",
        out.status, out.stderr
    );
    // Refusing is as good as restoring; writing through a link is not.
    assert!(
        [exit::OK, exit::REFUSED, exit::INPUT].contains(&out.status),
        "{out:?}"
    );
    for (victim, text) in &victims {
        assert_eq!(
            std::fs::read_to_string(victim).unwrap(),
            *text,
            "{} was written through a link",
            victim.display()
        );
    }
    if out.status == exit::OK {
        assert_eq!(crate::common::integrity_check(&db), "ok");
    }
}

/// Issue 10 item 10: run as root in a project another user owns, a replay
/// would run that user's `.venv/bin/python`, `env.py` and revision files
/// as root. One trust rule holds for all of them: the project is refused
/// unless it is listed as safe, in `MIGSNAP_SAFE_DIRECTORIES` or in the
/// user's `~/.config/migsnap/config.toml`.
#[test]
fn a_project_owned_by_someone_else_is_not_run_unless_listed_as_safe() {
    use crate::common::alembic::{AlembicProject, Revision};
    if !is_root() {
        skip("giving a project away needs root");
        return;
    }
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    project.revision(Revision::new("0001", "t").upgrade(
        r#"
        op.create_table("t", sa.Column("id", sa.Integer, primary_key=True))
        "#,
    ));
    project.upgrade("head").assert_success();
    env.run(&["init"]).assert_success();
    env.run(&["track", "app", AlembicProject::DB])
        .assert_success();
    // The project's own interpreter, found by discovery: it leaves a marker
    // whenever it runs, then is the real Python.
    let marker = tempfile::tempdir().unwrap();
    let ran = marker.path().join("ran");
    std::fs::create_dir_all(env.join(".venv/bin")).unwrap();
    let venv_python = env.join(".venv/bin/python");
    std::fs::write(
        &venv_python,
        format!(
            "#!/bin/sh\ntouch '{}'\nexec '{}' \"$@\"\n",
            ran.display(),
            project.python().display()
        ),
    )
    .unwrap();
    chmod(&venv_python, 0o755);
    let chown = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(env.path())
        .status()
        .unwrap();
    assert!(chown.success());

    let dir = env.path().display().to_string();
    for args in [&["status", "app"][..], &["replay"]] {
        let out = env.run_in(env.path(), args, &[("HOME", "/nonexistent")]);
        out.expect_error(
            exit::REFUSED,
            &[
                &dir,
                "owned by uid 65534",
                "not by you or root",
                "refusing to run",
            ],
        );
        assert!(
            out.stderr.contains(&format!(
                "hint: if you trust it, add it to MIGSNAP_SAFE_DIRECTORIES (`export MIGSNAP_SAFE_DIRECTORIES={dir}`)"
            )),
            "{}",
            out.stderr
        );
        assert!(!ran.exists(), "{args:?} ran the project's Python");
    }

    // Listed in the environment, the project runs with its own Python.
    env.run_in(
        env.path(),
        &["replay"],
        &[("HOME", "/nonexistent"), ("MIGSNAP_SAFE_DIRECTORIES", &dir)],
    )
    .assert_success();
    assert!(ran.exists(), "a trusted project's Python did not run");
    std::fs::remove_file(&ran).unwrap();

    // Listed in the user's configuration file, the same; a new revision
    // makes the replay run again.
    project.revision(Revision::new("0002", "u").down("0001").upgrade(
        r#"
        op.create_table("u", sa.Column("id", sa.Integer, primary_key=True))
        "#,
    ));
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join(".config/migsnap/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, format!("safe_directories = [\"{dir}\"]\n")).unwrap();
    let home_dir = home.path().display().to_string();
    let with_home = [("HOME", home_dir.as_str()), ("XDG_CONFIG_HOME", "")];
    env.run_in(env.path(), &["replay"], &with_home)
        .assert_success();
    assert!(ran.exists(), "a project listed in config.toml did not run");

    // A trusted project directory does not vouch for a foreign interpreter
    // inside it.
    std::fs::remove_file(&ran).unwrap();
    let third = project.revision(Revision::new("0003", "v").down("0002").upgrade(
        r#"
        op.create_table("v", sa.Column("id", sa.Integer, primary_key=True))
        "#,
    ));
    let chown_back = std::process::Command::new("chown")
        .args(["-R", "0:0"])
        .arg(env.path())
        .status()
        .unwrap();
    assert!(chown_back.success());
    std::os::unix::fs::lchown(&venv_python, Some(65534), Some(65534)).unwrap();
    env.run_in(env.path(), &["replay"], &[("HOME", "/nonexistent")])
        .expect_error(
            exit::REFUSED,
            &[
                &venv_python.display().to_string(),
                "owned by uid 65534",
                "Python",
            ],
        );
    assert!(!ran.exists(), "a foreign interpreter ran");
    // Nor for someone else's revision file.
    std::os::unix::fs::lchown(&venv_python, Some(0), Some(0)).unwrap();
    std::os::unix::fs::lchown(&third, Some(65534), Some(65534)).unwrap();
    env.run_in(env.path(), &["replay"], &[("HOME", "/nonexistent")])
        .expect_error(
            exit::REFUSED,
            &[
                &env.join("migrations/versions")
                    .join(third.file_name().unwrap())
                    .display()
                    .to_string(),
                "owned by uid 65534",
                "revision file",
            ],
        );
    assert!(!ran.exists(), "a foreign revision file ran");
}
