//! The PyPI wheel of the binary (issue 15): installed with pip into a fresh
//! virtualenv, the `migsnap` it puts there runs, and replays an Alembic
//! project with that virtualenv's Python and Alembic.
//!
//! `scripts/test.sh` builds the wheel (`scripts/build-wheel.sh`, with the
//! `dev` profile so it reuses what `cargo test` compiles) and downloads the
//! pinned test requirements into a wheelhouse, and hands both over in
//! `MIGSNAP_TEST_WHEEL` and `MIGSNAP_TEST_WHEELHOUSE`: the test installs
//! from them without reaching any index.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::alembic::{AlembicProject, Revision};
use crate::common::{TestEnv, test_path};

/// The wheel and the wheelhouse, or a failure that says how to make them.
fn wheel_and_wheelhouse() -> (PathBuf, PathBuf) {
    (
        test_path("MIGSNAP_TEST_WHEEL", "the wheel"),
        test_path("MIGSNAP_TEST_WHEELHOUSE", "the wheelhouse"),
    )
}

/// Runs `program` with `args` in `cwd` under a bare environment: `PATH` as
/// given, no `VIRTUAL_ENV`, no store override, no colour. Panics unless it
/// succeeds; returns stdout.
#[track_caller]
fn run_ok(program: &Path, args: &[&str], cwd: &Path, path: &str) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", path)
        .env("HOME", cwd)
        .env("NO_COLOR", "1")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "`{} {}` failed ({}):\n{}\n{}",
        program.display(),
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_wheel_installs_a_migsnap_that_replays_with_its_own_virtualenv() {
    let env = TestEnv::new();
    // The project's own virtualenv stays out of the way: the interpreter
    // must come from where the installed migsnap sits.
    let Some(mut project) = AlembicProject::new_in(&env, "app") else {
        return;
    };
    let (wheel, wheelhouse) = wheel_and_wheelhouse();
    let base = project.python().to_path_buf();
    let venv = env.join("appvenv");
    let bin = venv.join("bin");
    let system_path = "/usr/local/bin:/usr/bin:/bin";

    run_ok(
        &base,
        &["-m", "venv", venv.to_str().unwrap()],
        env.path(),
        system_path,
    );
    let python = bin.join("python");
    let pip_install = |args: &[&str]| {
        let mut all = vec!["-m", "pip", "install", "--quiet", "--no-index"];
        all.extend(args);
        run_ok(&python, &all, env.path(), system_path);
    };
    pip_install(&["--no-deps", wheel.to_str().unwrap()]);
    let migsnap = bin.join("migsnap");
    assert!(
        migsnap.is_file(),
        "the wheel put no migsnap in {}",
        bin.display()
    );

    let version = run_ok(&migsnap, &["--version"], env.path(), system_path);
    assert!(
        version.contains(env!("CARGO_PKG_VERSION")),
        "--version says {version:?}"
    );
    let demo = env.join("demo");
    std::fs::create_dir(&demo).unwrap();
    run_ok(&migsnap, &["demo"], &demo, system_path);

    // The application's Alembic, installed into the same virtualenv.
    let requirements = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/requirements-test.txt");
    pip_install(&[
        "--find-links",
        wheelhouse.to_str().unwrap(),
        "-r",
        requirements.to_str().unwrap(),
    ]);
    project.revision(
        Revision::new("a1a1a1a1a1a1", "users")
            .upgrade(r#"op.create_table("users", sa.Column("id", sa.Integer(), primary_key=True))"#)
            .downgrade(r#"op.drop_table("users")"#),
    );
    project.revision(
        Revision::new("b2b2b2b2b2b2", "posts")
            .down("a1a1a1a1a1a1")
            .upgrade(r#"op.create_table("posts", sa.Column("id", sa.Integer(), primary_key=True))"#)
            .downgrade(r#"op.drop_table("posts")"#),
    );
    // A decoy `alembic` first on PATH, whose interpreter cannot run
    // anything: the interpreter beside the running migsnap must win over it.
    let decoy = env.join("decoy");
    std::fs::create_dir(&decoy).unwrap();
    let script = decoy.join("alembic");
    std::fs::write(&script, "#!/bin/false\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{system_path}", decoy.display());

    let root = project.root().to_path_buf();
    run_ok(&migsnap, &["init"], &root, &path);
    let history = run_ok(&migsnap, &["--format", "json", "history"], &root, &path);
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(
        history["heads"],
        serde_json::json!(["b2b2b2b2b2b2"]),
        "{history}"
    );
    let replay = run_ok(&migsnap, &["--format", "json", "replay"], &root, &path);
    assert!(
        replay.contains("b2b2b2b2b2b2"),
        "the replay did not reach the head:\n{replay}"
    );
}
