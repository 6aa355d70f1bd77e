//! Criterion benchmark of schema capture plus semantic hash on a 200-table
//! database (the budget: 20 ms). Run: `cargo bench --bench schema`.
//!
//! The database is built in a temp dir: 200 tables of 8–11 columns with
//! defaults, NOT NULL, CHECKs, a UNIQUE constraint, a foreign key to the
//! previous table and two indexes each (one partial, one on an expression),
//! plus a view and a trigger every tenth table.

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use migsnap::schema;
use migsnap::snapshots::sqlite::Database;
use rusqlite::Connection;

const TABLES: usize = 200;

fn build(path: &Path) {
    let conn = Connection::open(path).expect("temp database opens");
    let mut sql = String::from("BEGIN;\n");
    for t in 0..TABLES {
        let extra: String = (0..t % 4).map(|c| format!(", extra_{c} BLOB")).collect();
        let reference = if t == 0 {
            String::new()
        } else {
            format!(
                ", parent_id INTEGER REFERENCES table_{:03}(id) ON DELETE CASCADE",
                t - 1
            )
        };
        sql.push_str(&format!(
            "CREATE TABLE table_{t:03} (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name VARCHAR(120) NOT NULL COLLATE NOCASE,
                email TEXT NOT NULL,
                created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
                score REAL DEFAULT 0 CHECK (score >= 0),
                status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
                payload JSON{reference}{extra},
                CONSTRAINT uq_{t:03}_email UNIQUE (email)
            );
            CREATE INDEX ix_{t:03}_name ON table_{t:03}(name, created_at DESC) WHERE status = 'active';
            CREATE INDEX ix_{t:03}_lower ON table_{t:03}(lower(email));\n"
        ));
        if t % 10 == 0 {
            sql.push_str(&format!(
                "CREATE VIEW view_{t:03} AS SELECT id, name FROM table_{t:03} WHERE status = 'active';
                 CREATE TRIGGER trg_{t:03} AFTER UPDATE OF status ON table_{t:03}
                 BEGIN UPDATE table_{t:03} SET score = 0 WHERE id = new.id; END;\n"
            ));
        }
    }
    sql.push_str("COMMIT;");
    conn.execute_batch(&sql).expect("benchmark schema is valid");
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("schema.db");
    build(&path);

    let conn = Connection::open(&path).expect("benchmark database opens");
    let check = {
        let tx = conn.unchecked_transaction().expect("read transaction");
        schema::capture(&tx).expect("capture")
    };
    assert_eq!(check.schema.tables.len(), TABLES);
    assert!(check.findings.is_empty());

    let mut group = c.benchmark_group("schema 200 tables");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("capture + semantic hash", |b| {
        b.iter(|| {
            let tx = conn.unchecked_transaction().expect("read transaction");
            let captured = schema::capture(&tx).expect("capture");
            captured.schema.semantic_hash()
        })
    });
    // The whole `Database` path of a snapshot: open read-only, one read
    // transaction with schema and metadata, hash.
    group.bench_function("open + capture + semantic hash", |b| {
        b.iter(|| {
            let mut db = Database::open(&path, Duration::from_secs(1)).expect("open");
            db.capture(None, None)
                .expect("capture")
                .schema
                .expect("no known stamp was given")
                .semantic_hash()
        })
    });
    let captured = check.schema;
    group.bench_function("semantic hash only", |b| {
        b.iter(|| captured.semantic_hash())
    });
    group.bench_function("blob encode + decode", |b| {
        b.iter(|| schema::Schema::from_blob(&captured.to_blob()).expect("decodes"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
