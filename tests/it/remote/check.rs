//! `migsnap check --push [REMOTE]` and `[check] push`: the scheduled check
//! pushes after its snapshots; a push that fails is reported in the
//! summary and sets the exit code, and the snapshots are recorded anyway.

use super::*;

/// `check` with `args` as JSON, with its exit code checked.
#[track_caller]
fn check(env: &TestEnv, args: &[&str], code: i32) -> serde_json::Value {
    let mut all = vec!["--format", "json", "check"];
    all.extend_from_slice(args);
    run(env, env.path(), &all).expect(code).json()
}

fn check_pushes_after_its_snapshots(remote: &Remote) {
    let env = project(remote, 200);
    exec(&env.join("app.db"), "DELETE FROM items WHERE id = 1;");
    let first = check(&env, &["--push"], exit::OK);
    assert_eq!(first["databases"][0]["snapshot"]["ok"]["recorded"], true);
    let pushed = &first["push"]["ok"];
    assert_eq!(pushed["remote"], "origin", "{first}");
    assert_eq!(pushed["updated"], 1);
    assert!(pushed["bytes"].as_u64().unwrap() > 0);
    let head = resolve(&env, env.path(), "app");
    assert_eq!(resolve(&env, env.path(), "origin/app"), head);

    // From migsnap.toml, and in text: nothing new to send.
    std::fs::write(env.join("migsnap.toml"), "[check]\npush = \"origin\"\n").unwrap();
    let text = run(&env, env.path(), &["check"])
        .expect(exit::OK)
        .stdout
        .clone();
    assert!(
        text.contains("push: origin (") && text.contains("0 ref(s) updated"),
        "{text}"
    );

    // A push that fails: reported, the exit code its own, the snapshot kept.
    exec(&env.join("app.db"), "DELETE FROM items WHERE id = 2;");
    let failed = check(&env, &["--push", "nowhere"], exit::INPUT);
    assert_eq!(failed["databases"][0]["snapshot"]["ok"]["recorded"], true);
    assert_eq!(failed["push"]["error"]["exit_code"], exit::INPUT);
    assert!(
        failed["push"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nowhere"),
        "{failed}"
    );
    let text = run(&env, env.path(), &["check", "--push", "nowhere"]);
    text.expect(exit::INPUT);
    assert!(text.stdout.contains("push: FAILED"), "{}", text.stdout);
    assert!(text.stderr.starts_with("error: "), "{}", text.stderr);
}

on_both_remotes!(check_pushes_after_its_snapshots);

/// A remote that does not answer fails the check with exit 6, which a
/// cron job can tell from damage; the snapshot is recorded.
#[test]
fn s3_check_with_an_unreachable_remote_exits_6() {
    if python_or_skip().is_none() {
        return;
    }
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 20);
    env.run(&["track", "app", "app.db"]).assert_success();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{closed}");
    run(
        &env,
        env.path(),
        &[
            "remote",
            "add",
            "origin",
            "s3://b/x",
            "--endpoint",
            &endpoint,
        ],
    )
    .assert_success();
    let out = run_bounded(&env, env.path(), &["--format", "json", "check", "--push"]);
    out.expect(exit::UNREACHABLE);
    let json = out.json();
    assert_eq!(json["databases"][0]["snapshot"]["ok"]["recorded"], true);
    assert_eq!(json["push"]["error"]["kind"], "unreachable");
}
