//! `migsnap report`: a real Alembic project whose database drifted, the
//! real binary writing the page, and real headless Chromium rendering it
//! (its DOM dumped and a screenshot taken), as a person would open it.
//!
//! Chromium is Debian's `chromium` package, which `scripts/test.sh`
//! installs when it is missing; where /usr/bin/chromium cannot be found the
//! browser half is skipped, and says so. `MIGSNAP_REPORT_SCREENSHOT=FILE`
//! also takes a screenshot of the whole page into FILE (that is how
//! `docs/report.png` is made).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::alembic::{AlembicProject, chat_app};
use crate::common::{TestEnv, exec, exit, file_hash, skip};

/// Where Debian's `chromium` package puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium";

/// A run of Chromium longer than this is a hang, not a slow machine.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

#[test]
fn report_of_a_drifted_database_renders_in_chromium() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    project.configure_store(&env, "");
    let db = project.db_path();
    // Stamped at the merge (one revision pending), then changed by hand:
    // a column dropped, a table added.
    project.upgrade(chat_app::MERGE).assert_success();
    env.run(&["track", "app", db.to_str().unwrap()])
        .assert_success();
    env.snapshot(&["app", "-m", "after upgrade to the merge"]);
    exec(
        &db,
        "ALTER TABLE chat DROP COLUMN archived;
         CREATE TABLE notes_backup (id INTEGER PRIMARY KEY, body TEXT);",
    );
    env.snapshot(&["app", "-m", "after a hand-written fix script"]);

    // The report as JSON: the verdict is status's, nothing is written.
    let json_run = env.run(&["--format", "json", "report", "app"]);
    json_run.expect(exit::PROBLEMS);
    let json = json_run.json();
    assert_eq!(json["clean"], false);
    assert_eq!(json["output"], serde_json::Value::Null);
    assert_eq!(json["status"]["rows"][0], chat_app::MERGE);
    let changes = json["status"]["comparison"]["drift"]["changes"]
        .as_array()
        .expect("drift changes")
        .clone();
    let names: Vec<&str> = changes
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"archived") && names.contains(&"notes_backup"),
        "{names:?}"
    );
    assert!(
        json["repair"]["plan"]["steps"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "no repair SQL: {}",
        json["repair"]
    );
    assert_eq!(json["snapshots"].as_array().unwrap().len(), 2);
    let status = env.run(&["--format", "json", "status", "app"]);
    assert_eq!(status.status, json_run.status, "report and status disagree");

    // The page: written even though the verdict fails.
    let page = env.join("out/report.html");
    std::fs::create_dir_all(page.parent().unwrap()).unwrap();
    let written = env.run(&["report", "app", "-o", "out/report.html"]);
    written.expect(exit::PROBLEMS);
    assert!(written.stdout.contains("FAIL: "), "{written:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"));

    let Some(dom) = chromium(&env, &["--dump-dom"], &page) else {
        return;
    };
    let dom = String::from_utf8(dom).expect("the DOM is text");
    assert!(dom.contains(r#"<h1 id="database">app</h1>"#), "{dom}");
    let stamped = element(&dom, r#"<dd id="stamped">"#, "</dd>");
    assert!(stamped.contains(chat_app::MERGE), "{stamped}");
    let drift = element(&dom, r#"<section id="drift">"#, "</section>");
    assert!(drift.contains("column chat.archived"), "{drift}");
    assert!(drift.contains("table notes_backup"), "{drift}");
    for name in &names {
        assert!(
            drift.contains(name),
            "drift item {name} not rendered:\n{drift}"
        );
    }
    assert_eq!(
        drift.matches(r#"class="drift-item""#).count(),
        changes.len()
    );
    let sql = element(&dom, r#"<pre class="sql">"#, "</pre>");
    assert!(sql.contains("archived"), "{sql}");

    let png = env.join("report.png");
    let shot = format!("--screenshot={}", png.display());
    chromium(&env, &[&shot, "--window-size=1200,1600"], &page).expect("chromium ran above");
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 1600));
    // A blank page of that size compresses to a few KiB; text, tables and
    // colour do not.
    assert!(
        bytes.len() > 40_000,
        "a near-empty screenshot: {} bytes",
        bytes.len()
    );
    // For the README's picture: the whole page, not only the first 1600
    // pixels (a second browser run, so only when asked).
    if let Some(keep) = std::env::var_os("MIGSNAP_REPORT_SCREENSHOT") {
        let shot = format!("--screenshot={}", Path::new(&keep).display());
        chromium(&env, &[&shot, "--window-size=1200,1900"], &page);
    }
}

#[test]
fn report_replaces_only_its_own_pages_without_force() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    project.configure_store(&env, "");
    project.upgrade("head").assert_success();
    let db = project.db_path();
    let db = db.to_str().unwrap();

    // Text output needs a file for the page.
    env.run(&["report", db])
        .expect_error(exit::USAGE, &["-o FILE"]);
    // A file that is not a report is kept, unless forced.
    std::fs::write(env.join("notes.html"), "<p>mine</p>").unwrap();
    let before = file_hash(&env.join("notes.html"));
    env.run(&["report", db, "-o", "notes.html"])
        .expect_error(exit::REFUSED, &["notes.html", "not a migsnap report"]);
    assert_eq!(file_hash(&env.join("notes.html")), before);
    // Nothing to report against is still a report: clean, exit 0.
    env.run(&["report", db, "-o", "notes.html", "--force"])
        .assert_success();
    let first = std::fs::read_to_string(env.join("notes.html")).unwrap();
    assert!(first.contains("CLEAN"), "{first}");
    // Its own page is replaced without --force, and no temporary file is
    // left beside it.
    exec(&project.db_path(), "CREATE TABLE scratch (x);");
    env.run(&["report", db, "-o", "notes.html"])
        .expect(exit::PROBLEMS);
    let second = std::fs::read_to_string(env.join("notes.html")).unwrap();
    assert!(second.contains("table scratch"), "{second}");
    let left: Vec<PathBuf> = std::fs::read_dir(env.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // A directory is never replaced.
    std::fs::create_dir(env.join("dir.html")).unwrap();
    env.run(&["report", db, "-o", "dir.html", "--force"])
        .expect_error(exit::INPUT, &["dir.html", "not a regular file"]);
}

/// The text of the first element that starts with `open`, up to `close`.
#[track_caller]
fn element<'a>(dom: &'a str, open: &str, close: &str) -> &'a str {
    let start = dom
        .find(open)
        .unwrap_or_else(|| panic!("no {open} in the DOM:\n{dom}"));
    let end = dom[start..]
        .find(close)
        .unwrap_or_else(|| panic!("{open} is not closed"));
    &dom[start..start + end]
}

/// Runs headless Chromium on the page at `page` with `args`, in a fresh
/// profile, with everything that would reach the network turned off;
/// returns its stdout. `None` (and says so) where Chromium is not
/// installed.
fn chromium(env: &TestEnv, args: &[&str], page: &Path) -> Option<Vec<u8>> {
    if !Path::new(CHROMIUM).is_file() {
        skip(&format!(
            "{CHROMIUM} not found: the page was written but not rendered; \
             `apt-get install chromium` (scripts/test.sh does so as root)"
        ));
        return None;
    }
    let profile = tempfile::Builder::new()
        .prefix("chromium-profile-")
        .tempdir_in(env.path())
        .unwrap();
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // Read both pipes while it runs, so a chatty browser never blocks.
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).map(|_| bytes)
        })
    };
    let (out, err) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            panic!("chromium {args:?} did not finish in {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = out.join().unwrap().unwrap();
    let err = err.join().unwrap().unwrap();
    assert!(
        status.success(),
        "chromium {args:?} failed ({status}):\n{}",
        String::from_utf8_lossy(&err)
    );
    Some(out)
}
