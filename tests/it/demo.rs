//! The README's main command, `migsnap demo`, must keep working.

use crate::common::TestEnv;

#[test]
fn demo_runs_end_to_end_in_text_and_json() {
    let env = TestEnv::new();
    let out = env.run(&["demo"]);
    let text = out.assert_success();
    for needle in [
        "$ migsnap snapshot -m 'before upgrade' --tag before-upgrade",
        "+ column chat.archived",
        "appeared: column:chat.archived",
        "restored ",
        "no problems",
        "demo complete: the restore removed the fix script's column and kept every row.",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }

    let json = env.run(&["--format", "json", "demo"]).json();
    let steps = json["steps"].as_array().unwrap();
    let fsck = steps
        .iter()
        .find(|s| s["command"] == serde_json::json!(["fsck", "--read-data"]))
        .expect("the demo runs fsck");
    assert_eq!(fsck["output"]["clean"], true);
    assert_eq!(fsck["exit_code"], 0);
}
