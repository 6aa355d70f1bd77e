//! `migsnap completions` and `migsnap man`, checked by the programs that
//! consume them: bash runs the completion function as it would on TAB,
//! man renders every page with its warnings on, zsh and fish (where they
//! are installed) parse their scripts.

use std::path::Path;
use std::process::Command;

use crate::common::{Journal, TestEnv, exit, skip};

/// What bash's completion for `migsnap` offers for the command line `line`
/// with the cursor at its end, found as bash-completion's own tests do:
/// load the script, set COMP_WORDS, COMP_CWORD, COMP_LINE and COMP_POINT,
/// call the function `complete -p` names, and print COMPREPLY.
#[track_caller]
fn bash_complete(script: &Path, cwd: &Path, line: &str) -> Vec<String> {
    let program = r#"
        source "$1" || exit 90
        spec=$(complete -p migsnap) || exit 91
        func=$(sed -n 's/.* -F \([^ ]*\) .*/\1/p' <<<"$spec")
        [[ -n $func ]] || exit 92
        COMP_LINE=$2
        COMP_POINT=${#COMP_LINE}
        read -r -a COMP_WORDS <<<"$COMP_LINE"
        # A line ending in a space starts a new, empty word.
        [[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        "$func" migsnap "$cur" "$prev"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", program, "bash"])
        .arg(script)
        .arg(line)
        .current_dir(cwd)
        .env_remove("MIGSNAP_STORE")
        .output()
        .expect("run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "completing {line:?} failed ({}):\n{stderr}",
        out.status
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_subcommands_their_flags_and_values() {
    let env = TestEnv::new();
    let script = env
        .run(&["completions", "bash"])
        .assert_success()
        .to_owned();
    let path = env.join("migsnap.bash");
    std::fs::write(&path, &script).unwrap();

    assert_eq!(bash_complete(&path, env.path(), "migsnap sn"), ["snapshot"]);
    let s = bash_complete(&path, env.path(), "migsnap s");
    for name in ["show", "snapshot", "stamp", "status"] {
        assert!(
            s.contains(&name.to_owned()),
            "`migsnap s` misses {name}: {s:?}"
        );
    }
    assert!(
        !s.contains(&"log".to_owned()),
        "`migsnap s` offers log: {s:?}"
    );
    assert_eq!(
        bash_complete(&path, env.path(), "migsnap snapshot --sch"),
        ["--schema-only"]
    );
    assert_eq!(
        bash_complete(&path, env.path(), "migsnap --format j"),
        ["json"]
    );
    assert_eq!(
        bash_complete(&path, env.path(), "migsnap completions f"),
        ["fish"]
    );
    // Nested subcommands are completed too.
    let bisect = bash_complete(&path, env.path(), "migsnap bisect ");
    assert!(
        bisect.contains(&"start".to_owned()) && bisect.contains(&"drift".to_owned()),
        "`migsnap bisect ` offers {bisect:?}"
    );
}

#[test]
fn dynamic_bash_completion_offers_the_stores_databases_tags_and_ids() {
    let env = TestEnv::with_store();
    env.make_db("webui.db", Journal::Delete, 10);
    let first = env.snapshot(&["webui.db"]);
    env.run(&["tag", "before-upgrade"]).assert_success();
    crate::common::exec(&env.join("webui.db"), "CREATE TABLE extra (x INTEGER);");
    let second = env.snapshot(&["webui"]);
    // The registration script, as a shell loads it at start-up.
    let out = env.run_in(env.path(), &[], &[("MIGSNAP_COMPLETE", "bash")]);
    let script = out.assert_success();
    let path = env.join("dynamic.bash");
    std::fs::write(&path, script).unwrap();
    let complete = |line: &str| bash_complete(&path, env.path(), line);

    assert_eq!(complete("migsnap sn"), ["snapshot"]);
    assert_eq!(complete("migsnap snapshot --sch"), ["--schema-only"]);
    let show = complete("migsnap show ");
    for value in [
        "HEAD",
        "before-upgrade",
        "webui",
        &first[..12],
        &second[..12],
    ] {
        assert!(
            show.contains(&value.to_owned()),
            "`migsnap show ` misses {value}: {show:?}"
        );
    }
    assert_eq!(complete("migsnap show bef"), ["before-upgrade"]);
    assert_eq!(
        complete(&format!("migsnap restore {}", &first[..4])),
        [&first[..12]]
    );
    // `locate` takes a database or a snapshot, each offered once.
    assert_eq!(complete("migsnap locate we"), ["webui", "webui.db"]);
    // A side of diff is also `live` or a file.
    let side = complete("migsnap diff before-upgrade ");
    for value in ["live", "webui", "webui.db", "before-upgrade"] {
        assert!(
            side.contains(&value.to_owned()),
            "diff's side misses {value}: {side:?}"
        );
    }
    // A database is a tracked name or a file.
    let log = complete("migsnap log we");
    assert!(
        log.contains(&"webui".to_owned()) && log.contains(&"webui.db".to_owned()),
        "`migsnap log we` offers {log:?}"
    );
    // fish, where installed, asks the binary the same way.
    let fish = env.run_in(env.path(), &[], &[("MIGSNAP_COMPLETE", "fish")]);
    std::fs::write(env.join("dynamic.fish"), fish.assert_success()).unwrap();
    if let Ok(out) = Command::new("fish")
        .args([
            "--no-config",
            "-c",
            "source $argv[1]; complete -C 'migsnap show bef'",
        ])
        .arg(env.join("dynamic.fish"))
        .current_dir(env.path())
        .env_remove("MIGSNAP_STORE")
        .output()
    {
        let offered = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            offered,
            "before-upgrade\ttag\n",
            "fish: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Outside any store, values from the store are simply not offered.
    let elsewhere = TestEnv::new();
    let none = bash_complete(&path, elsewhere.path(), "migsnap show b");
    assert!(none.is_empty(), "outside a store: {none:?}");
}

#[test]
fn zsh_fish_and_powershell_scripts_are_generated_and_parse() {
    let env = TestEnv::new();
    for (shell, marker, check) in [
        ("zsh", "#compdef migsnap", Some(("zsh", "-n"))),
        (
            "fish",
            "complete -c migsnap",
            Some(("fish", "--no-execute")),
        ),
        ("powershell", "Register-ArgumentCompleter", None),
    ] {
        let script = env.run(&["completions", shell]).assert_success().to_owned();
        assert!(
            script.contains(marker) && script.contains("snapshot"),
            "the {shell} script lacks {marker:?} or the snapshot command:\n{script}"
        );
        let Some((program, flag)) = check else {
            continue;
        };
        let path = env.join(format!("migsnap.{shell}"));
        std::fs::write(&path, &script).unwrap();
        match Command::new(program).arg(flag).arg(&path).output() {
            Ok(out) => assert!(
                out.status.success() && out.stderr.is_empty(),
                "`{program} {flag}` rejects the {shell} script:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                skip(&format!(
                    "{program} is not installed; its script was only generated"
                ));
            }
            Err(e) => panic!("run {program}: {e}"),
        }
    }
    // fish can also complete a line from its script, as on TAB.
    if let Ok(out) = Command::new("fish")
        .args([
            "--no-config",
            "-c",
            "source $argv[1]; complete -C 'migsnap sn'",
        ])
        .arg(env.join("migsnap.fish"))
        .output()
    {
        let offered = String::from_utf8_lossy(&out.stdout);
        let names: Vec<&str> = offered
            .lines()
            .map(|l| l.split('\t').next().unwrap())
            .collect();
        assert_eq!(
            names,
            ["snapshot"],
            "fish completes `migsnap sn` to:\n{offered}"
        );
    }
}

#[test]
fn completions_json_holds_the_script_and_a_bad_shell_is_a_usage_error() {
    let env = TestEnv::new();
    let text = env
        .run(&["completions", "bash"])
        .assert_success()
        .to_owned();
    let json = env
        .run(&["--format", "json", "completions", "bash"])
        .expect(exit::OK)
        .json();
    assert_eq!(json["shell"], "bash");
    assert_eq!(json["script"].as_str().unwrap(), text);
    let out = env.run(&["completions", "tcsh"]);
    out.expect(exit::USAGE);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

/// Renders the page at `page` with `man -l`, troff's warnings on, and
/// returns the text; fails on any warning.
#[track_caller]
fn man_render(page: &Path) -> String {
    let out = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(page)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| {
            panic!("run man ({e}); it comes with man-db, which scripts/test.sh installs")
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "man -l {} warns ({}):\n{stderr}",
        page.display(),
        out.status
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn man_page_renders_without_warnings_and_lists_the_commands() {
    let env = TestEnv::new();
    let roff = env.run(&["man"]).assert_success().to_owned();
    assert!(roff.starts_with(".ie") || roff.contains("\n.TH "), "{roff}");
    let page = env.join("migsnap.1");
    std::fs::write(&page, &roff).unwrap();
    let text = man_render(&page);
    for needle in [
        "NAME", "SYNOPSIS", "OPTIONS", "--format", "snapshot", "restore", "status", "man",
    ] {
        assert!(
            text.contains(needle),
            "the man page lacks {needle:?}:\n{text}"
        );
    }
    let json = env
        .run(&["--format", "json", "man"])
        .expect(exit::OK)
        .json();
    assert_eq!(
        json["roff"].as_str().unwrap(),
        roff.trim_end_matches('\n').to_owned() + "\n"
    );
    assert_eq!(json["files"], serde_json::json!(["migsnap.1"]));
    assert_eq!(json["dir"], serde_json::Value::Null);
}

#[test]
fn man_out_writes_one_page_per_subcommand_and_each_renders() {
    let env = TestEnv::new();
    let dir = env.join("man/man1");
    let listed = env
        .run(&["man", "--out", dir.to_str().unwrap()])
        .assert_success()
        .to_owned();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut printed: Vec<String> = listed
        .lines()
        .map(|l| {
            l.strip_prefix(&format!("{}/", dir.display()))
                .unwrap()
                .to_owned()
        })
        .collect();
    printed.sort();
    assert_eq!(printed, files, "stdout lists the files written");
    for page in [
        "migsnap.1",
        "migsnap-snapshot.1",
        "migsnap-restore.1",
        "migsnap-bisect-start.1",
    ] {
        assert!(
            files.contains(&page.to_owned()),
            "{page} missing from {files:?}"
        );
    }
    assert!(
        !files.iter().any(|f| f.contains("help")),
        "a page for `help`: {files:?}"
    );
    for file in &files {
        let text = man_render(&dir.join(file));
        assert!(
            text.contains("NAME") && text.contains("SYNOPSIS"),
            "{file}:\n{text}"
        );
    }
    let snapshot = man_render(&dir.join("migsnap-snapshot.1"));
    assert!(snapshot.contains("--schema-only"), "{snapshot}");

    let again = env.join("again");
    let json = env
        .run(&["--format", "json", "man", "--out", again.to_str().unwrap()])
        .expect(exit::OK)
        .json();
    assert_eq!(json["dir"].as_str().unwrap(), again.to_str().unwrap());
    let names: Vec<&str> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, files);
    assert_eq!(names[0], "migsnap.1", "the top page comes first");
    assert_eq!(json["roff"], serde_json::Value::Null);
}

#[test]
fn man_out_that_cannot_be_written_is_one_error_naming_the_path() {
    let env = TestEnv::new();
    let file = env.join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = env.run(&["man", "--out", file.to_str().unwrap()]);
    out.expect_error(exit::INPUT, &["cannot write", file.to_str().unwrap()]);
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    let json = env.run(&["--format", "json", "man", "--out", file.to_str().unwrap()]);
    json.expect(exit::INPUT);
    let error: serde_json::Value = serde_json::from_str(&json.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "input");

    if crate::common::is_root() {
        skip("root writes into a read-only directory; the permission case is not checked");
        return;
    }
    let locked = env.join("locked");
    std::fs::create_dir(&locked).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = env.run(&["man", "--out", locked.to_str().unwrap()]);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    out.expect_error(
        exit::REFUSED,
        &["cannot write", locked.join("migsnap.1").to_str().unwrap()],
    );
}
