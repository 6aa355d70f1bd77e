//! LD_PRELOAD shims: C files beside the tests, compiled with `cc` when a
//! test needs one, that interpose libc calls of the real binary so its own
//! error paths meet a real failed (or damaged) call.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A compiled shim, in a directory of its own (which also holds what the
/// shim logs).
pub struct Shim {
    pub dir: tempfile::TempDir,
    pub so: PathBuf,
}

impl Shim {
    /// Compiles `tests/it/{name}.c`. A missing or failing `cc` fails the
    /// test: skipping would hide that nothing was injected.
    pub fn build(name: &str) -> Shim {
        let dir = tempfile::Builder::new()
            .prefix(&format!("migsnap-{name}-"))
            .tempdir()
            .unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/it/{name}.c"));
        let so = dir.path().join(format!("{name}.so"));
        let out = Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&so)
            .arg(&source)
            .arg("-ldl")
            .output()
            .unwrap_or_else(|e| panic!("cannot run `cc` to build {}: {e}", source.display()));
        assert!(
            out.status.success(),
            "`cc` failed to build {}:\n{}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Shim { dir, so }
    }

    /// The shared object's path, for `LD_PRELOAD`.
    pub fn preload(&self) -> &str {
        self.so.to_str().expect("a temporary path is UTF-8")
    }
}
