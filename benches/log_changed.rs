//! Criterion benchmark of `log --changed` over 1,000 snapshots (the issue's
//! budget: 200 ms of process wall time). Run: `cargo bench --bench
//! log_changed`.
//!
//! The store is built in a temp dir through the library: a 20-table
//! database, snapshotted schema-only 1,000 times; every tenth snapshot adds a
//! column somewhere, the others are recorded with `allow_empty`, so most
//! consecutive snapshots share a schema blob, as in real histories. The
//! followed column appears at snapshot 500 and disappears at 800.
//!
//! Timed: opening the store and walking the whole history for
//! `column:table_05.watch`, as the command does (without printing).

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use migsnap::repo::Repo;
use migsnap::snapshots::log::{ObjectSpec, changed_log};
use migsnap::snapshots::snapshot::{SnapshotOptions, take};
use migsnap_store::progress::Silent;
use rusqlite::Connection;

const SNAPSHOTS: usize = 1_000;
const TABLES: usize = 20;

fn build(dir: &Path) {
    let db_path = dir.join("app.db");
    let conn = Connection::open(&db_path).expect("temp database opens");
    for t in 0..TABLES {
        conn.execute_batch(&format!(
            "CREATE TABLE table_{t:02}(id INTEGER PRIMARY KEY, name TEXT NOT NULL,
                 email TEXT UNIQUE, created_at TEXT DEFAULT CURRENT_TIMESTAMP,
                 score REAL CHECK (score >= 0), parent_id INTEGER REFERENCES table_{t:02}(id));
             CREATE INDEX table_{t:02}_name ON table_{t:02}(lower(name)) WHERE name IS NOT NULL;"
        ))
        .expect("schema builds");
    }
    let mut repo = Repo::init(&dir.join(".migsnap")).expect("store initialises");
    let db = repo.track("app", &db_path).expect("database tracks");
    for i in 0..SNAPSHOTS {
        if i > 0 && i % 10 == 0 {
            let table = (i / 10) % TABLES;
            conn.execute_batch(&format!(
                "ALTER TABLE table_{table:02} ADD COLUMN c_{i} INTEGER DEFAULT {i};"
            ))
            .expect("column adds");
        }
        if i == 500 {
            conn.execute_batch("ALTER TABLE table_05 ADD COLUMN watch TEXT;")
                .expect("column adds");
        }
        if i == 800 {
            conn.execute_batch("ALTER TABLE table_05 DROP COLUMN watch;")
                .expect("column drops");
        }
        let options = SnapshotOptions {
            message: format!("snapshot {i}"),
            schema_only: true,
            allow_empty: true,
            busy_timeout: Duration::from_secs(5),
            ..SnapshotOptions::default()
        };
        take(&mut repo, &db, &options, &mut Silent).expect("snapshot is taken");
    }
}

fn walk(dir: &Path, spec: &ObjectSpec) -> usize {
    let repo = Repo::open(Some(&dir.join(".migsnap")), dir).expect("store opens");
    let db = repo.select(Some("app")).expect("database is tracked");
    let view = repo.store.view();
    let head = view
        .find_ref(&db.head_ref())
        .expect("ref reads")
        .expect("head exists");
    changed_log(view, head, spec, None)
        .expect("history walks")
        .len()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    build(dir.path());
    let spec: ObjectSpec = "column:table_05.watch".parse().expect("spec parses");
    assert_eq!(walk(dir.path(), &spec), 2, "appeared and disappeared");
    let mut group = c.benchmark_group("log_changed");
    group.sample_size(20);
    group.bench_function("column over 1000 snapshots", |b| {
        b.iter(|| walk(dir.path(), &spec))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
