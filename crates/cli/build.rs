//! Bundles every recipe under `examples/` into the binary, so `postdoc example` and
//! `postdoc demo` work from any install without the source tree.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("../../examples");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut examples: Vec<PathBuf> = std::fs::read_dir(&root)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    examples.sort();
    let mut code = String::from("pub(crate) static BUNDLED: &[Example] = &[\n");
    for dir in examples {
        let name = dir.file_name().expect("a folder name").to_string_lossy().into_owned();
        let mut files = Vec::new();
        collect(&dir, &dir, &mut files);
        files.sort();
        writeln!(code, "    ({name:?}, &[").unwrap();
        for (relative, absolute) in files {
            writeln!(code, "        ({relative:?}, include_bytes!({:?})),", absolute.display().to_string()).unwrap();
        }
        code.push_str("    ]),\n");
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets it")).join("bundled.rs");
    std::fs::write(out, code).expect("write the bundled examples");
}

/// The recipe's files: not Python caches, virtual environments or other hidden folders.
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "__pycache__") {
                collect(root, &path, files);
            }
        } else if !name.ends_with(".pyc") && (name == ".gitignore" || !name.starts_with('.')) {
            let relative = path.strip_prefix(root).expect("inside the root").to_string_lossy().into_owned();
            let absolute = std::fs::canonicalize(&path).expect("an existing file");
            files.push((relative, absolute));
        }
    }
}
