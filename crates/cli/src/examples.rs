//! Example recipes bundled in the binary, so `postdoc example` works from any install.

use anyhow::{Context, Result, bail};
use std::path::Path;

const TINY_LOGREG: &[(&str, &str)] = &[
    ("README.md", include_str!("../../../examples/tiny-logreg/README.md")),
    ("postdoc.toml", include_str!("../../../examples/tiny-logreg/postdoc.toml")),
    ("recipe.toml", include_str!("../../../examples/tiny-logreg/recipe.toml")),
    ("data.py", include_str!("../../../examples/tiny-logreg/data.py")),
    ("train.py", include_str!("../../../examples/tiny-logreg/train.py")),
    ("eval.py", include_str!("../../../examples/tiny-logreg/eval.py")),
    ("heldout.py", include_str!("../../../examples/tiny-logreg/heldout.py")),
    (".gitignore", "__pycache__/\n"),
];

pub(crate) fn write(name: &str, dir: &Path) -> Result<()> {
    let files = match name {
        "tiny-logreg" => TINY_LOGREG,
        other => bail!("no bundled example named `{other}` (there is: tiny-logreg)"),
    };
    if dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} exists and is not empty; name a new folder", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (path, text) in files {
        std::fs::write(dir.join(path), text).with_context(|| format!("cannot write {}", dir.join(path).display()))?;
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
    println!("wrote the {name} recipe to {} (a new git repository); run it with:", dir.display());
    println!("  postdoc -C {} run", dir.display());
    Ok(())
}
