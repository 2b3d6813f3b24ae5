//! Example recipes bundled in the binary (every folder of `examples/`, by the build script), so
//! `postdoc example` and `postdoc demo` work from any install.

use anyhow::{Context, Result, bail};
use std::path::Path;

/// A file of an example: its path in the recipe and its bytes.
type File = (&'static str, &'static [u8]);
/// An example: its name and files.
type Example = (&'static str, &'static [File]);

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

fn names() -> String {
    BUNDLED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// Writes the example `name` into `dir` (new or empty) as a new git repository with one commit.
pub(crate) fn write(name: &str, dir: &Path, quiet: bool) -> Result<()> {
    let Some((_, files)) = BUNDLED.iter().find(|(n, _)| *n == name) else {
        bail!("no bundled example named `{name}` (there is: {})", names());
    };
    if dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} exists and is not empty; name a new folder", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (path, bytes) in files.iter() {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, bytes).with_context(|| format!("cannot write {}", target.display()))?;
    }
    if !files.iter().any(|(p, _)| *p == ".gitignore") {
        std::fs::write(dir.join(".gitignore"), "__pycache__/\n")
            .with_context(|| format!("cannot write {}", dir.join(".gitignore").display()))?;
    }
    let git = |args: &[&str]| -> Result<()> {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=postdoc", "-c", "user.email=postdoc@localhost", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(dir)
            .output()
            .context("cannot run git (is it installed?)")?;
        if !out.status.success() {
            bail!("git {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    };
    git(&["init", "-q"])?;
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", &format!("The {name} example recipe")])?;
    if !quiet {
        println!("wrote the {name} recipe to {} (a new git repository); run it with:", dir.display());
        println!("  postdoc -C {} run", dir.display());
    }
    Ok(())
}
