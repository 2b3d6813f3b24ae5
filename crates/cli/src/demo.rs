//! `postdoc demo`: the tiny-posttrain example, set up and studied in one command, ending with a
//! summary a person can read.

use crate::examples;
use anyhow::{Result, bail};
use postdoc_core::Manifest;
use postdoc_core::units::human_seconds;
use postdoc_search::describe_change;
use postdoc_store::{Store, StudyRecord};
use postdoc_study::{Recipe, StopReason, Summary, read_knobs};
use std::path::{Path, PathBuf};

pub(crate) const EXAMPLE: &str = "tiny-posttrain";

/// Python 3 with a working venv module is all the demo needs from the machine; say exactly
/// what to install when it is missing.
pub(crate) fn check_python() -> Result<()> {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 9) else 3)"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match probe {
        Err(_) => bail!(
            "postdoc demo trains its example with Python, and python3 is not on the PATH: install Python 3.9 or \
             newer with its venv module (Debian or Ubuntu: `sudo apt install python3 python3-venv`; Fedora: \
             `sudo dnf install python3`; macOS: `brew install python`)"
        ),
        Ok(status) if status.code() == Some(3) => {
            bail!("postdoc demo needs Python 3.9 or newer; python3 on the PATH is older: install a newer Python 3")
        }
        Ok(status) if !status.success() => bail!(
            "postdoc demo makes a Python virtual environment, and python3 has no working venv module: install it \
             (Debian or Ubuntu: `sudo apt install python3-venv`)"
        ),
        Ok(_) => Ok(()),
    }
}

/// Where the demo's recipe goes when no folder is named: a new folder under the temporary one.
pub(crate) fn default_dir() -> PathBuf {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    std::env::temp_dir().join(format!("postdoc-demo-{stamp}-{}", std::process::id()))
}

pub(crate) fn prepare(dir: &Path) -> Result<()> {
    check_python()?;
    examples::write(EXAMPLE, dir, true)?;
    eprintln!(
        "postdoc demo: the {EXAMPLE} recipe (a small pretrained character model, post-trained to reverse and shift words) is in \
         {}.\nIts setup installs numpy into a virtual environment there; then the built-in specialists study it.",
        dir.display()
    );
    Ok(())
}

/// The end of the demo: what the study found, in words.
pub(crate) async fn report(dir: &Path, store: &Store, study: &StudyRecord, reason: &StopReason) -> Result<()> {
    let manifest = Manifest::parse(&study.manifest, "the study's manifest")?;
    let s = Summary::read(store, study, &manifest).await?;
    let recipe = Recipe::open(dir, None).await?;
    let metric = &manifest.study.objective.metric;
    println!("\npostdoc demo finished ({reason}).\n");
    let Some(base) = s.baseline.as_ref().and_then(|b| b.score) else {
        println!("The unmodified recipe did not produce a score; see `postdoc -C {} status`.", dir.display());
        return Ok(());
    };
    let runs = s.baseline.as_ref().map(|b| b.runs).unwrap_or(0);
    println!("  baseline   {metric} {base:.4} ± {:.4} (noise over {runs} seeds)", s.noise.sigma);
    match s.best.as_ref().filter(|b| !b.is_baseline()) {
        Some(best) => {
            let score = best.score.unwrap_or(f64::NAN);
            let gain = manifest.study.objective.direction.gain(score) - manifest.study.objective.direction.gain(base);
            let times =
                if s.noise.sigma > 0.0 { format!(", {:.1}x the noise", gain / s.noise.sigma) } else { String::new() };
            println!(
                "  best       {metric} {score:.4} ({:+.4}{times}): trial {} by {}",
                score - base,
                best.number,
                best.specialist
            );
            let commit = best.commit.clone().unwrap_or_else(|| study.base_commit.clone());
            println!("  changes    {}", knob_changes(&recipe, &manifest, &study.base_commit, &commit).await);
        }
        None => println!("  best       the baseline: no candidate beat it by more than the noise"),
    }
    let labels: Vec<String> = s.labels.iter().map(|(l, n)| format!("{l} {n}")).collect();
    println!("  trials     {} ({})", s.trials, labels.join(", "));
    println!(
        "  compute    {} of training and evaluation in {} of wall clock",
        human_seconds(s.compute_seconds),
        human_seconds(s.active_seconds)
    );
    let c = format!("postdoc -C {}", dir.display());
    println!("\nLook further:\n  {c} status\n  {c} lineage\n  {c} show TRIAL\n  {c} best [--branch NAME]");
    Ok(())
}

/// How the best recipe's knob files differ from the starting recipe's, knob by knob.
async fn knob_changes(recipe: &Recipe, manifest: &Manifest, base: &str, best: &str) -> String {
    let mut before = postdoc_core::KnobValues::new();
    let mut after = postdoc_core::KnobValues::new();
    for spec in &manifest.specialists {
        let Some(file) = &spec.knobs_file else { continue };
        let read = |commit: &str| {
            let repo = recipe.repo.clone();
            let (commit, file) = (commit.to_string(), file.clone());
            async move {
                let bytes = repo.read_files(&commit, &[file]).await.ok().and_then(|mut v| v.pop()).unwrap_or_default();
                String::from_utf8_lossy(&bytes).into_owned()
            }
        };
        before.extend(read_knobs(&read(base).await, spec.knobs.keys()));
        after.extend(read_knobs(&read(best).await, spec.knobs.keys()));
    }
    if before == after { "no knob changed (the code did)".into() } else { describe_change(&before, &after) }
}
