//! Any text as a `CREATE` statement from `sqlite_schema.sql`: the schema
//! parser answers or errs, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = migsnap::schema::parse::parse("fuzzed", text);
    }
});
