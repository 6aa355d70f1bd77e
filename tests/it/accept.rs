//! `accept` on a real Alembic project: it shows the difference it would
//! accept and records it only when confirmed; accepted variants can be
//! listed and removed, and `status` and `locate` name them as such.

use std::path::Path;

use crate::common::alembic::{AlembicProject, chat_app};
use crate::common::{TestEnv, exec};

fn status(env: &TestEnv, db: &Path) -> (i32, serde_json::Value) {
    let out = env.run(&["--format", "json", "status", db.to_str().unwrap()]);
    assert!(out.status == 0 || out.status == 1, "{out:?}");
    (out.status, out.json())
}

fn variants(env: &TestEnv) -> Vec<serde_json::Value> {
    env.run(&["--format", "json", "accept", "--list"]).ok_json()["variants"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn accept_shows_the_difference_and_needs_yes_then_list_and_remove() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    project.configure_store(&env, "");
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade("head").assert_success();
    // A legacy install created an extra index the migrations never made.
    exec(&db, "CREATE INDEX chat_title_idx ON chat(title)");

    // Without --yes (and no terminal to ask on) nothing is stored.
    let refused = env.run(&["accept", path]);
    assert_eq!(refused.status, 4, "{refused:?}");
    assert!(
        refused
            .stdout
            .contains("extra index chat_title_idx on chat"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("not accepted"), "{refused:?}");
    assert!(refused.stderr.contains("--yes"), "{refused:?}");
    let refused = env.run(&["--format", "json", "accept", path]);
    assert_eq!(refused.status, 4, "{refused:?}");
    let json = refused.json();
    assert_eq!(json["accepted"], false);
    assert_eq!(json["diff"]["changes"][0]["name"], "chat_title_idx");
    assert_eq!(variants(&env), Vec::<serde_json::Value>::new());
    assert_eq!(status(&env, &db).0, 1);

    let accepted = env.run(&["accept", path, "--yes"]);
    assert_eq!(accepted.status, 0, "{accepted:?}");
    assert!(
        accepted
            .stdout
            .contains("extra index chat_title_idx on chat"),
        "{accepted:?}"
    );
    let listed = variants(&env);
    assert_eq!(listed.len(), 1);
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["targets"], serde_json::json!([chat_app::HEAD]));
    assert_eq!(listed[0]["diff"]["changes"][0]["name"], "chat_title_idx");
    assert_eq!(listed[0]["diff"]["changes"][0]["op"], "added");
    assert!(listed[0]["time"].as_i64().unwrap() > 0);
    let text = env.run(&["accept", "--list"]);
    assert!(text.assert_success().contains(&id[..12]), "{text:?}");
    assert!(text.stdout.contains(chat_app::HEAD), "{text:?}");
    assert!(
        text.stdout.contains("extra index chat_title_idx"),
        "{text:?}"
    );

    // status and locate name the variant, not just "the reference".
    let (code, json) = status(&env, &db);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["comparison"]["variant"], id.as_str());
    let text = env.run(&["status", path]);
    assert!(
        text.assert_success()
            .contains(&format!("matches accepted variant {}", &id[..12])),
        "{text:?}"
    );
    let located = env.run(&["--format", "json", "locate", path]).ok_json();
    assert_eq!(located["exact"][0]["accepted"], true);
    assert_eq!(located["exact"][0]["snapshot"], id.as_str());
    let text = env.run(&["locate", path]);
    assert!(
        text.assert_success()
            .contains(&format!("(accepted variant {})", &id[..12])),
        "{text:?}"
    );
    // Accepting the same shape again: nothing to accept.
    env.run(&["accept", path, "--yes"])
        .expect_error(3, &["already matches accepted variant"]);

    // Remove by a prefix: the shape is drift again.
    env.run(&["accept", "--remove", "0000ffff"])
        .expect_error(3, &["no accepted variant 0000ffff"]);
    env.run(&["accept", "--remove", "ab"])
        .expect_error(3, &["accept --remove", "hex digits"]);
    let removed = env
        .run(&["--format", "json", "accept", "--remove", &id[..8]])
        .ok_json();
    assert_eq!(removed["removed"]["id"], id.as_str());
    assert_eq!(variants(&env), Vec::<serde_json::Value>::new());
    let (code, json) = status(&env, &db);
    assert_eq!(code, 1, "{json}");
    assert_eq!(
        json["comparison"]["drift"]["changes"][0]["name"],
        "chat_title_idx"
    );
}
