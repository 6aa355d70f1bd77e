//! One schema capture plus its semantic hash, as a whole process: what
//! issue 3's "capture + semantic hash ≤ 20 ms of process wall time" times.
//! `benches/schema_compare.sh` runs it on the 200-table database.
//!
//!     cargo run --release --example capture_once -- DB

use std::time::Duration;

fn main() {
    let path = std::env::args_os().nth(1).expect("usage: capture_once DB");
    let mut db = migsnap::snapshots::sqlite::Database::open(
        std::path::Path::new(&path),
        Duration::from_secs(5),
    )
    .expect("the database opens");
    let capture = db.capture(None, None).expect("the schema is read");
    let schema = capture
        .schema
        .expect("a capture without a known stamp has a schema");
    println!(
        "{} tables, semantic {}",
        schema.tables.len(),
        schema.semantic_hash()
    );
}
