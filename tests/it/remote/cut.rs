//! The server cut off mid-push and mid-fetch, then the transfer resumed:
//! a TCP proxy between migsnap and moto ([`Proxy`]) shuts every connection
//! after so many bytes, and refuses new ones, as a server that died would,
//! while moto keeps what it received. The rerun goes to moto directly and
//! sends (or downloads) only what had not arrived.

use super::*;
use crate::common::proxy::Proxy;

/// `remote add NAME URL --endpoint ENDPOINT` in `env`.
fn add_via(env: &TestEnv, remote: &Remote, name: &str, endpoint: &str) {
    run(
        env,
        env.path(),
        &["remote", "add", name, &remote.url, "--endpoint", endpoint],
    )
    .assert_success();
}

#[test]
fn s3_server_cut_mid_push_then_resumed() {
    let Some(remote) = Remote::s3() else {
        return;
    };
    let moto = remote.server.as_ref().unwrap();
    let env = large_project(&remote);
    // How many packs a whole push takes, from a push to a directory.
    let probe = Remote::file();
    run(&env, env.path(), &["remote", "add", "probe", &probe.url]).assert_success();
    let whole = push(&env, env.path(), &["probe"]);
    let total = whole["packs"].as_u64().unwrap();
    assert!(total >= 4, "{whole}");

    let proxy = Proxy::start(moto.port);
    add_via(&env, &remote, "flaky", &proxy.endpoint());
    add_via(&env, &remote, "direct", &moto.endpoint());
    // Two packs go up at once: cut when about two and a half have gone.
    proxy.cut_after_up(20 << 20);
    let cut = run_bounded(&env, env.path(), &["push", "flaky"]);
    assert!(proxy.is_cut());
    cut.expect_error(exit::UNREACHABLE, &["unreachable"]);
    assert!(remote.keys("refs/").is_empty(), "no ref before every pack");
    let arrived = remote
        .keys("packs/")
        .iter()
        .filter(|k| k.ends_with(".idx"))
        .count() as u64;
    assert!(arrived >= 1 && arrived < total, "{arrived} of {total}");
    fsck_clean(&env, env.path());

    let rerun = push(&env, env.path(), &["direct"]);
    eprintln!(
        "measured: cut after {} bytes up ({arrived} of {total} packs complete); the rerun sent {} packs, {} bytes, {} objects already there",
        proxy.up(),
        rerun["packs"],
        rerun["bytes"],
        rerun["objects_present"]
    );
    // Not the packs that arrived; the rest regroup as before, but for one
    // pack of the two in flight that arrived out of order.
    let sent = rerun["packs"].as_u64().unwrap();
    assert!(
        sent <= total - arrived + 1 && sent >= total - arrived - 1,
        "{rerun}"
    );
    assert!(rerun["objects_present"].as_u64().unwrap() > 1000, "{rerun}");
    assert!(
        rerun["bytes"].as_u64().unwrap() < whole["bytes"].as_u64().unwrap() - arrived * (7 << 20),
        "{rerun}"
    );
    let checked = run(
        &env,
        env.path(),
        &[
            "--format",
            "json",
            "fsck",
            "--remote",
            "direct",
            "--read-data",
        ],
    )
    .expect(exit::OK)
    .json();
    assert_eq!(checked["clean"], true, "{checked}");
    // The pack cut off half-way has no index: garbage for the remote gc.
    assert!(checked["unindexed_packs"].as_u64().unwrap() <= 1);
}

#[test]
fn s3_server_cut_mid_fetch_then_resumed() {
    let Some(remote) = Remote::s3() else {
        return;
    };
    let moto = remote.server.as_ref().unwrap();
    let env = large_project(&remote);
    let pushed = push(&env, env.path(), &[]);
    let total = pushed["packs"].as_u64().unwrap();

    let other = TestEnv::with_store();
    let proxy = Proxy::start(moto.port);
    add_via(&other, &remote, "flaky", &proxy.endpoint());
    add_via(&other, &remote, "direct", &moto.endpoint());
    // Four packs download at once: by 32 MiB of the 47 most have arrived.
    proxy.cut_after_down(32 << 20);
    run_bounded(&other, other.path(), &["fetch", "flaky"])
        .expect_error(exit::UNREACHABLE, &["unreachable"]);
    assert!(other.refs().is_empty(), "a cut fetch imports nothing");
    fsck_clean(&other, other.path());

    let rerun = run(
        &other,
        other.path(),
        &["--format", "json", "fetch", "direct"],
    )
    .expect(exit::OK)
    .json();
    eprintln!(
        "measured: cut after {} bytes down; the rerun downloaded {} bytes and kept {} of {total} packs",
        proxy.down(),
        rerun["bytes"],
        rerun["resumed"]
    );
    let resumed = rerun["resumed"].as_u64().unwrap();
    assert!(resumed >= 1 && resumed < total, "{rerun}");
    assert_eq!(rerun["packs"].as_u64().unwrap(), total);
    assert!(
        rerun["bytes"].as_u64().unwrap() < pushed["bytes"].as_u64().unwrap() - (7 << 20),
        "{rerun}"
    );
    fsck_clean(&other, other.path());
    assert_eq!(
        resolve(&other, other.path(), "direct/app"),
        resolve(&env, env.path(), "app")
    );
    assert!(!other.store_dir().join("fetch-packs").exists());
    run(
        &other,
        other.path(),
        &["checkout", "direct/app", "-o", "app.db"],
    )
    .expect(exit::OK);
    assert_eq!(
        file_hash(&other.join("app.db")),
        file_hash(&env.join("app.db"))
    );
}
