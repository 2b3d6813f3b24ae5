//! Evaluation the recipe cannot cheat: the protected files are snapshotted once, hashed, and
//! copied afresh (and re-checked) for every evaluation; scores come only from the evaluator's
//! JSON; artifact sizes are measured by the harness.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot write the evaluator's files to {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the pristine evaluator files changed on disk (hash {found}, expected {expected})")]
    Tampered { expected: String, found: String },
}

/// A protected file as the study's starting commit has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedFile {
    pub path: String,
    pub executable: bool,
    pub contents: Vec<u8>,
}

/// The study's pristine copy of its protected files and their hash.
#[derive(Debug, Clone)]
pub struct Pristine {
    files: Vec<ProtectedFile>,
    hash: String,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> EvalError + '_ {
    move |source| EvalError::Io { path: path.to_path_buf(), source }
}

/// One hash over paths, modes and contents, in path order.
pub fn hash_files(files: &[ProtectedFile]) -> String {
    let mut sorted: Vec<&ProtectedFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut h = Sha256::new();
    for f in sorted {
        h.update((f.path.len() as u64).to_le_bytes());
        h.update(f.path.as_bytes());
        h.update([u8::from(f.executable)]);
        h.update((f.contents.len() as u64).to_le_bytes());
        h.update(&f.contents);
    }
    let digest = h.finalize();
    format!("sha256:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

impl Pristine {
    pub fn new(files: Vec<ProtectedFile>) -> Pristine {
        let hash = hash_files(&files);
        Pristine { files, hash }
    }

    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// A protected file's snapshot, by its path in the recipe.
    pub fn file(&self, path: &str) -> Option<&ProtectedFile> {
        self.files.iter().find(|f| f.path == path)
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|f| f.path.as_str())
    }

    /// Writes a fresh copy into `dir` (which must not hold other files) and checks that what
    /// landed on disk hashes as the snapshot does.
    pub fn materialize(&self, dir: &Path) -> Result<(), EvalError> {
        for f in &self.files {
            let path = dir.join(&f.path);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            fs::write(&path, &f.contents).map_err(io_err(&path))?;
            let mode = if f.executable { 0o755 } else { 0o644 };
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io_err(&path))?;
        }
        let found = self.hash_on_disk(dir)?;
        if found != self.hash {
            return Err(EvalError::Tampered { expected: self.hash.clone(), found });
        }
        Ok(())
    }

    /// The hash of this snapshot's paths as they are in `dir` now.
    pub fn hash_on_disk(&self, dir: &Path) -> Result<String, EvalError> {
        let mut on_disk = Vec::with_capacity(self.files.len());
        for f in &self.files {
            let path = dir.join(&f.path);
            let meta = fs::metadata(&path).map_err(io_err(&path))?;
            on_disk.push(ProtectedFile {
                path: f.path.clone(),
                executable: meta.permissions().mode() & 0o111 != 0,
                contents: fs::read(&path).map_err(io_err(&path))?,
            });
        }
        Ok(hash_files(&on_disk))
    }
}

/// Why the evaluator's output is not a score.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoreError {
    #[error(
        "the evaluator printed no JSON object (its last line of output must be one, or it must write $POSTDOC_EVAL_OUT)"
    )]
    NoJson,
    #[error("the evaluator reported {key} = {value}, which is not a finite number")]
    NotFinite { key: String, value: String },
    #[error("the evaluator's JSON has no numeric metric")]
    NoMetrics,
    #[error("the evaluator did not report the objective `{0}`")]
    MissingObjective(String),
}

/// Reads the evaluator's metrics: the file it wrote at `$POSTDOC_EVAL_OUT` if any, else the last
/// non-empty line of its output. Only top-level numbers count; `NaN` or infinities are errors.
pub fn parse_scores(output: &str, eval_out: Option<&str>) -> Result<BTreeMap<String, f64>, ScoreError> {
    let text = match eval_out.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => t.to_string(),
        None => output.lines().rev().map(str::trim).find(|l| !l.is_empty()).ok_or(ScoreError::NoJson)?.to_string(),
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(_) => return Err(non_finite(&text).unwrap_or(ScoreError::NoJson)),
    };
    let object = value.as_object().ok_or(ScoreError::NoJson)?;
    let scores: BTreeMap<String, f64> = object.iter().filter_map(|(k, v)| v.as_f64().map(|f| (k.clone(), f))).collect();
    if scores.is_empty() {
        return Err(ScoreError::NoMetrics);
    }
    Ok(scores)
}

/// Python's `json.dumps` writes `NaN` and `Infinity`, which are not JSON: name the key.
fn non_finite(text: &str) -> Option<ScoreError> {
    for token in ["-Infinity", "Infinity", "NaN"] {
        if let Some(at) = text.find(token) {
            let before = &text[..at];
            let key = before.rfind(':').and_then(|colon| {
                let k = before[..colon].trim_end().trim_end_matches('"');
                k.rfind('"').map(|q| k[q + 1..].to_string())
            });
            return Some(ScoreError::NotFinite { key: key.unwrap_or_else(|| "a metric".into()), value: token.into() });
        }
    }
    None
}

/// Total bytes of the regular files under `dir`; links are not followed (a link to a large file
/// elsewhere is not an artifact the recipe produced).
pub fn artifact_bytes(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                total += entry.metadata()?.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_come_from_the_last_line_or_the_file() {
        let s = parse_scores("loading\n{\"accuracy\": 0.5, \"n\": 500, \"name\": \"x\"}\n\n", None).unwrap();
        assert_eq!(s, BTreeMap::from([("accuracy".to_string(), 0.5), ("n".to_string(), 500.0)]));
        let s = parse_scores("{\"accuracy\": 0.9}\n", Some("{\"accuracy\": 0.1}")).unwrap();
        assert_eq!(s["accuracy"], 0.1, "the file wins over what was printed");
        assert_eq!(parse_scores("all done\n", None), Err(ScoreError::NoJson));
        assert_eq!(parse_scores("", None), Err(ScoreError::NoJson));
        assert_eq!(parse_scores("[1, 2]", None), Err(ScoreError::NoJson));
        assert_eq!(parse_scores("{\"note\": \"x\"}", None), Err(ScoreError::NoMetrics));
        assert_eq!(
            parse_scores("{\"loss\": 1.0, \"accuracy\": NaN}", None),
            Err(ScoreError::NotFinite { key: "accuracy".into(), value: "NaN".into() })
        );
        assert_eq!(
            parse_scores("{\"loss\": -Infinity}", None),
            Err(ScoreError::NotFinite { key: "loss".into(), value: "-Infinity".into() })
        );
    }

    fn files() -> Vec<ProtectedFile> {
        vec![
            ProtectedFile { path: "eval.py".into(), executable: false, contents: b"print(1)".to_vec() },
            ProtectedFile { path: "bench/data.jsonl".into(), executable: false, contents: b"{}\n".to_vec() },
            ProtectedFile { path: "score.sh".into(), executable: true, contents: b"#!/bin/sh".to_vec() },
        ]
    }

    #[test]
    fn hash_covers_content_mode_and_path() {
        let base = hash_files(&files());
        let mut reordered = files();
        reordered.reverse();
        assert_eq!(hash_files(&reordered), base, "order does not matter");
        let mut edited = files();
        edited[0].contents = b"print(2)".to_vec();
        assert_ne!(hash_files(&edited), base);
        let mut chmod = files();
        chmod[2].executable = false;
        assert_ne!(hash_files(&chmod), base);
    }

    #[test]
    fn materialized_copies_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pristine::new(files());
        p.materialize(dir.path()).unwrap();
        assert_eq!(fs::read(dir.path().join("bench/data.jsonl")).unwrap(), b"{}\n");
        assert_eq!(p.hash_on_disk(dir.path()).unwrap(), p.hash());
        fs::write(dir.path().join("eval.py"), "print('hacked')").unwrap();
        assert_ne!(p.hash_on_disk(dir.path()).unwrap(), p.hash());
        p.materialize(dir.path()).unwrap();
        assert_eq!(p.hash_on_disk(dir.path()).unwrap(), p.hash(), "a fresh copy restores the files");
    }

    #[test]
    fn artifact_size_counts_files_not_links() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(artifact_bytes(&dir.path().join("missing")).unwrap(), 0);
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join("a/model.bin"), vec![0u8; 1000]).unwrap();
        fs::write(dir.path().join("a/b/extra"), vec![0u8; 24]).unwrap();
        std::os::unix::fs::symlink("/bin/sh", dir.path().join("link")).unwrap();
        assert_eq!(artifact_bytes(dir.path()).unwrap(), 1024);
    }
}
