//! migsnap as a pre-commit hook (issue 15): `lint` and `history` in a clone
//! where `migsnap init` never ran, the active virtualenv passed over when it
//! has no Alembic (as under pre-commit), and the repository's own
//! `.pre-commit-hooks.yaml` installed by real pre-commit from PyPI into a
//! git repository of an Alembic app, refusing the commits it should.
//!
//! The pre-commit test builds migsnap from a clone, as pre-commit does
//! (`pip install .` of the hook repository, through maturin): offline, from
//! the wheelhouse `scripts/test.sh` downloads (`MIGSNAP_TEST_WHEELHOUSE`,
//! with pre-commit and maturin), with the Cargo profile and build directory
//! of the binary under test, so cargo reuses the compiled dependencies and
//! rebuilds only the two migsnap crates (about a minute on two cores).
//! pre-commit itself runs from the test virtualenv (`MIGSNAP_TEST_PYTHON`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::common::alembic::{AlembicProject, Revision};
use crate::common::{BIN, TestEnv, git, test_path};

const USERS: &str = "a1a1a1a1a1a1";
const POSTS: &str = "b2b2b2b2b2b2";
const NICKNAME: &str = "c3c3c3c3c3c3";
const TAGS: &str = "d4d4d4d4d4d4";

/// A revision creating table `name`, on `parent` (`None`: a base).
fn create_table(id: &str, name: &str, parent: Option<&str>) -> Revision {
    let revision = Revision::new(id, name)
        .upgrade(&format!(
            "op.create_table(\"{name}\", sa.Column(\"id\", sa.Integer(), primary_key=True))"
        ))
        .downgrade(&format!("op.drop_table(\"{name}\")"));
    match parent {
        Some(parent) => revision.down(parent),
        None => revision,
    }
}

/// The revision that alters `users`, which it did not create.
fn add_nickname() -> Revision {
    Revision::new(NICKNAME, "nickname")
        .down(POSTS)
        .upgrade("op.add_column(\"users\", sa.Column(\"nickname\", sa.Text()))")
        .downgrade("op.drop_column(\"users\", \"nickname\")")
}

/// The directory entries of `dir` whose names start with `prefix`.
fn entries(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(prefix))
        .collect()
}

#[test]
fn lint_and_history_run_without_a_store_on_a_scratch_store_they_remove() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    if env
        .path()
        .ancestors()
        .skip(1)
        .any(|d| d.join(".migsnap").exists())
    {
        crate::common::skip("a .migsnap store exists above the temp dir");
        return;
    }
    project.revision(create_table(USERS, "users", None));
    project.revision(create_table(POSTS, "posts", Some(USERS)));
    // Checked in, as a clone has it; no `migsnap init`.
    std::fs::write(
        env.join("migsnap.toml"),
        format!(
            "[migrations]\npython = \"{}\"\n",
            project.python().display()
        ),
    )
    .unwrap();
    git(env.path(), &["init", "-q"]);
    git(env.path(), &["add", "."]);
    git(env.path(), &["commit", "-q", "-m", "app"]);
    let staged = project.revision(add_nickname());
    git(env.path(), &["add", staged.to_str().unwrap()]);

    // From a subdirectory: the project root is where migsnap.toml is.
    let tmp = env.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let subdir = env.join("migrations");
    let tmp_env = [("TMPDIR", tmp.to_str().unwrap())];
    let out = env.run_in(&subdir, &["lint", "--staged"], &tmp_env);
    out.expect(1);
    assert!(
        out.stdout.contains(&format!(
            "error lint.alters-existing-table migrations/versions/{NICKNAME}_nickname.py"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(
            "no migsnap store here: the references were replayed into a temporary store, now removed"
        ),
        "{}",
        out.stderr
    );
    let json = env
        .run_in(&subdir, &["--format", "json", "history"], &tmp_env)
        .expect(0)
        .json();
    assert_eq!(json["heads"], serde_json::json!([NICKNAME]), "{json}");
    // Nothing was left behind: no store in the project, no scratch store.
    assert!(!env.store_dir().exists());
    assert!(!subdir.join(".migsnap").exists());
    assert_eq!(entries(&tmp, ""), Vec::<String>::new());

    // A broken store is reported, never passed over for a scratch one.
    std::fs::create_dir(env.store_dir()).unwrap();
    env.run(&["lint", "--staged"])
        .expect_error(5, &["is not a usable migsnap store", "it has no store.db"]);
}

#[test]
fn an_active_virtualenv_without_alembic_is_passed_over_for_alembic_on_path() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    project.revision(create_table(USERS, "users", None));
    // What pre-commit activates for a hook: a virtualenv holding migsnap
    // alone. Its Python cannot run anything, so choosing it fails.
    let hook_env = env.join("hook-env");
    std::fs::create_dir_all(hook_env.join("bin")).unwrap();
    let python = hook_env.join("bin/python");
    std::fs::write(&python, "#!/bin/false\n").unwrap();
    crate::common::chmod(&python, 0o755);
    // The developer's virtualenv, activated before: its `alembic` on PATH.
    let app_bin = project.python().parent().unwrap().to_path_buf();
    assert!(app_bin.join("alembic").is_file(), "{}", app_bin.display());
    let path = format!(
        "{}:{}:/usr/bin:/bin",
        hook_env.join("bin").display(),
        app_bin.display()
    );
    env.run(&["init"]).assert_success();
    let out = env.run_in(
        env.path(),
        &["--format", "json", "replay"],
        &[("VIRTUAL_ENV", hook_env.to_str().unwrap()), ("PATH", &path)],
    );
    out.expect(0);
    assert!(out.stdout.contains(USERS), "{}", out.stdout);
}

/// The Cargo profile the binary under test was built with, and the
/// directory of its intermediate artefacts (`CARGO_BUILD_BUILD_DIR` when
/// set, else the target directory of `<target>/<profile dir>/migsnap`):
/// what the hook's build reuses.
fn profile_and_build_dir() -> (String, PathBuf) {
    let profile_dir = Path::new(BIN).parent().unwrap();
    let profile = match profile_dir.file_name().unwrap().to_str().unwrap() {
        "debug" => "dev".to_owned(),
        other => other.to_owned(),
    };
    let build_dir = std::env::var_os("CARGO_BUILD_BUILD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| profile_dir.parent().unwrap().to_path_buf());
    (profile, build_dir)
}

/// A git repository holding this source tree as it is now (tracked and
/// untracked files, as `git ls-files` lists them; ignored ones left out),
/// committed: what pre-commit clones. Returns the commit. `fuzz/` is left
/// out: cargo-fuzz's own crate, which nothing here builds, with some 7,000
/// corpus files that would only slow the copy, the clone and the clean-up.
fn source_repository(dir: &Path) -> String {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    let listed = git(
        source,
        &[
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            ".",
            ":!fuzz",
        ],
    );
    for name in listed.split('\0').filter(|n| !n.is_empty()) {
        let from = source.join(name);
        // A file deleted but not yet staged is listed, and absent.
        if !from.is_file() {
            continue;
        }
        let to = dir.join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    git(dir, &["init", "-q"]);
    git(dir, &["add", "-A"]);
    git(
        dir,
        &["commit", "-q", "-m", "migsnap as it is being tested"],
    );
    git(dir, &["rev-parse", "HEAD"]).trim().to_owned()
}

/// Runs commands in the app's git repository as a developer would with the
/// app's virtualenv activated (pre-commit and Alembic installed there),
/// with pre-commit's home, pip and cargo kept in the test and offline.
struct Developer<'a> {
    app: &'a Path,
    venv: PathBuf,
    envs: Vec<(&'static str, String)>,
}

/// What a command printed (both streams: git shows a hook's output on
/// stderr) and whether it succeeded.
struct Ran {
    ok: bool,
    output: String,
}

impl Developer<'_> {
    #[track_caller]
    fn run(&self, program: &str, args: &[&str]) -> Ran {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(self.app)
            .env_remove("MIGSNAP_STORE")
            .env_remove("PYTHONPATH");
        for (name, value) in &self.envs {
            command.env(name, value);
        }
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        Ran {
            ok: out.status.success(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// `git commit -m MESSAGE` of what is staged, with the hooks.
    fn commit(&self, message: &str) -> Ran {
        self.run("git", &["commit", "-q", "-m", message])
    }

    fn head(&self) -> String {
        git(self.app, &["rev-parse", "HEAD"]).trim().to_owned()
    }

    fn python(&self) -> String {
        self.venv.join("bin/python").display().to_string()
    }
}

/// The part of pre-commit's output about hook `id`: the lines after its
/// `- hook id: ID` line, up to the next hook's status line
/// (`name.....Passed`, `Failed` or `Skipped`).
fn hook_section(output: &str, id: &str) -> String {
    let marker = format!("- hook id: {id}");
    output
        .lines()
        .skip_while(|line| *line != marker)
        .skip(1)
        .take_while(|line| {
            let status = ["Passed", "Failed", "Skipped"]
                .iter()
                .any(|s| line.ends_with(s));
            !(status && line.contains("...."))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn pre_commit_installs_the_hooks_and_refuses_an_altered_table_and_two_heads() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new_in(&env, "app") else {
        return;
    };
    let wheelhouse = test_path(
        "MIGSNAP_TEST_WHEELHOUSE",
        "the wheelhouse of scripts/requirements-test.txt",
    );
    let venv = project
        .python()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let (profile, build_dir) = profile_and_build_dir();

    let hooks_repo = env.join("migsnap-src");
    let rev = source_repository(&hooks_repo);

    let app = project.root().to_path_buf();
    project.revision(create_table(USERS, "users", None));
    std::fs::write(
        app.join(".pre-commit-config.yaml"),
        format!(
            "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: migsnap-lint\n      - id: migsnap-history\n",
            hooks_repo.display()
        ),
    )
    .unwrap();
    git(&app, &["init", "-q"]);
    git(&app, &["add", "."]);
    git(&app, &["commit", "-q", "-m", "app without hooks"]);

    let tmp = env.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let developer = Developer {
        app: &app,
        venv: venv.clone(),
        envs: vec![
            ("PATH", path),
            ("VIRTUAL_ENV", venv.display().to_string()),
            (
                "PRE_COMMIT_HOME",
                env.join("pre-commit-home").display().to_string(),
            ),
            ("PRE_COMMIT_COLOR", "never".to_owned()),
            ("NO_COLOR", "1".to_owned()),
            ("TMPDIR", tmp.display().to_string()),
            // pip, offline: the hook repository's build backend (maturin)
            // comes from the wheelhouse.
            ("PIP_NO_INDEX", "1".to_owned()),
            ("PIP_FIND_LINKS", wheelhouse.display().to_string()),
            ("PIP_NO_CACHE_DIR", "1".to_owned()),
            ("PIP_DISABLE_PIP_VERSION_CHECK", "1".to_owned()),
            ("PIP_NO_INPUT", "1".to_owned()),
            (
                "VIRTUALENV_OVERRIDE_APP_DATA",
                env.join("virtualenv-data").display().to_string(),
            ),
            // maturin's PEP 517 backend adds MATURIN_PEP517_ARGS to its
            // `maturin pep517 build-wheel`. Cargo (1.91 and later) keeps
            // intermediate artefacts in the build directory, so the
            // compiled dependencies are reused, and puts the executable it
            // builds in the target directory, so the one under test is
            // left alone.
            ("MATURIN_PEP517_ARGS", format!("--profile {profile}")),
            ("CARGO_BUILD_BUILD_DIR", build_dir.display().to_string()),
            (
                "CARGO_TARGET_DIR",
                env.join("hook-target").display().to_string(),
            ),
            ("CARGO_NET_OFFLINE", "true".to_owned()),
            ("GIT_CONFIG_GLOBAL", "/dev/null".to_owned()),
            ("GIT_CONFIG_NOSYSTEM", "1".to_owned()),
            ("GIT_AUTHOR_NAME", "a developer".to_owned()),
            ("GIT_AUTHOR_EMAIL", "dev@example.com".to_owned()),
            ("GIT_COMMITTER_NAME", "a developer".to_owned()),
            ("GIT_COMMITTER_EMAIL", "dev@example.com".to_owned()),
        ],
    };
    let python = developer.python();
    let installed = developer.run(&python, &["-m", "pre_commit", "install"]);
    assert!(
        installed.ok,
        "pre-commit install failed (is pre-commit in {}? `bash scripts/test-venv.sh` installs \
         scripts/requirements-test.txt):\n{}",
        venv.display(),
        installed.output
    );

    // A feature's own table: both hooks pass. The first commit installs
    // the hooks' environment: pip builds migsnap from the clone.
    let started = Instant::now();
    let posts = project.revision(create_table(POSTS, "posts", Some(USERS)));
    git(&app, &["add", posts.to_str().unwrap()]);
    let good = developer.commit("posts");
    assert!(good.ok, "the good commit was refused:\n{}", good.output);
    for name in [
        "migsnap lint (staged migrations)",
        "migsnap history (heads and links)",
    ] {
        assert!(
            good.output
                .lines()
                .any(|l| l.starts_with(name) && l.ends_with("Passed")),
            "{name} did not pass:\n{}",
            good.output
        );
    }
    eprintln!(
        "first commit, with the hooks' installation: {:.1?}",
        started.elapsed()
    );
    let after_good = developer.head();

    // Altering a table another revision created: refused by the lint, with
    // the finding and the file; the history is fine.
    let nickname = project.revision(add_nickname());
    git(&app, &["add", nickname.to_str().unwrap()]);
    let altered = developer.commit("nickname");
    assert!(
        !altered.ok,
        "the altering commit passed:\n{}",
        altered.output
    );
    let lint = hook_section(&altered.output, "migsnap-lint");
    assert!(
        lint.contains("- exit code: 1")
            && lint.contains(&format!(
                "error lint.alters-existing-table migrations/versions/{NICKNAME}_nickname.py: "
            ))
            && lint.contains("FAIL: 1 error"),
        "the lint hook did not show the finding:\n{}",
        altered.output
    );
    assert!(
        altered
            .output
            .lines()
            .any(|l| l.starts_with("migsnap history") && l.ends_with("Passed")),
        "{}",
        altered.output
    );
    assert_eq!(developer.head(), after_good, "the refused commit was made");
    git(&app, &["rm", "-q", "--cached", nickname.to_str().unwrap()]);
    std::fs::remove_file(&nickname).unwrap();

    // A second line on the base: two heads, refused by the history hook.
    let tags = project.revision(create_table(TAGS, "tags", Some(USERS)));
    git(&app, &["add", tags.to_str().unwrap()]);
    let forked = developer.commit("tags");
    assert!(
        !forked.ok,
        "the second head was committed:\n{}",
        forked.output
    );
    let history = hook_section(&forked.output, "migsnap-history");
    assert!(
        history.contains("- exit code: 1")
            && history.contains("[history.multiple-heads]")
            && history.contains(POSTS)
            && history.contains(TAGS),
        "the history hook did not show the two heads:\n{}",
        forked.output
    );
    assert_eq!(developer.head(), after_good, "the refused commit was made");

    // The hooks never made a store in the app, and left no scratch store.
    assert!(!app.join(".migsnap").exists());
    assert_eq!(entries(&tmp, "migsnap-scratch-"), Vec::<String>::new());
}
