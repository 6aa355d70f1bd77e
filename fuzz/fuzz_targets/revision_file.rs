//! Any text as an Alembic revision file: the static parser answers or
//! errs, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = migsnap::migrations::history::revision_file::parse(text);
    }
});
