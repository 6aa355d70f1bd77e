//! Any text as `alembic.ini`: the configparser-exact reader answers or
//! errs, never panics (interpolation loops, odd continuations, separators).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = migsnap::migrations::history::alembic_config::parse_ini(
            Path::new("/fuzz/alembic.ini"),
            text,
            "alembic",
        );
    }
});
