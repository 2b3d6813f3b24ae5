//! A workbench over a real git repository in a temporary folder.

#![allow(dead_code)]

pub(crate) use postdoc_brain::testing::{anthropic_turn, openai_turn};
use postdoc_core::{BenchError, Transcript, TrialNo, Workbench};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

pub(crate) const TRAIN: &str = "import json\nlr = 0.1\nsteps = 100\n\ndef train():\n    return lr * steps\n";
pub(crate) const RECIPE: &str = "# knobs\nlr = 0.1 # learning rate\nsteps = 100\n";
pub(crate) const EVAL: &str = "print('{\"accuracy\": 0.5}')\n";

pub(crate) struct DirBench {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) transcripts: Mutex<Vec<Transcript>>,
    pub(crate) preflights: Mutex<u32>,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

impl DirBench {
    pub(crate) fn new() -> DirBench {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in [
            ("train.py", TRAIN),
            ("recipe.toml", RECIPE),
            ("eval.py", EVAL),
            ("README.md", "notes\n"),
            ("benchmark/problems.jsonl", "{\"prompt\": \"2+2\"}\n"),
        ] {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        git(dir.path(), &["init", "-q"]);
        git(dir.path(), &["add", "-A"]);
        git(dir.path(), &["commit", "-q", "-m", "recipe"]);
        DirBench { dir, transcripts: Mutex::new(Vec::new()), preflights: Mutex::new(0) }
    }

    fn path(&self, rel: &str) -> Result<PathBuf, BenchError> {
        if rel.starts_with('/') || rel.split('/').any(|c| c == "..") {
            return Err(BenchError::Refused(format!("`{rel}` is outside the recipe")));
        }
        Ok(self.dir.path().join(rel))
    }

    pub(crate) fn transcript(&self) -> Transcript {
        self.transcripts.lock().unwrap().last().cloned().expect("a transcript was kept")
    }
}

#[async_trait::async_trait]
impl Workbench for DirBench {
    fn parent(&self) -> TrialNo {
        3
    }

    async fn start_from(&self, trial: TrialNo) -> Result<(), BenchError> {
        Err(BenchError::Refused(format!("trial {trial} is not in this test")))
    }

    async fn list_files(&self) -> Result<Vec<(String, u64)>, BenchError> {
        git(self.dir.path(), &["add", "-A"]);
        Ok(git(self.dir.path(), &["ls-files"])
            .lines()
            .map(|p| (p.to_string(), std::fs::metadata(self.dir.path().join(p)).map(|m| m.len()).unwrap_or(0)))
            .collect())
    }

    async fn read_file(&self, path: &str) -> Result<String, BenchError> {
        std::fs::read_to_string(self.path(path)?).map_err(|e| BenchError::Refused(format!("cannot read `{path}`: {e}")))
    }

    async fn write_file(&self, path: &str, text: &str) -> Result<(), BenchError> {
        let p = self.path(path)?;
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).map_err(|e| BenchError::Broken(e.to_string()))
    }

    async fn diff(&self) -> Result<String, BenchError> {
        git(self.dir.path(), &["add", "-A"]);
        Ok(git(self.dir.path(), &["diff", "--cached"]))
    }

    async fn preflight(&self) -> Result<String, BenchError> {
        *self.preflights.lock().unwrap() += 1;
        let out = Command::new("python3")
            .args(["-m", "py_compile", "train.py"])
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        Ok(if out.status.success() {
            "preflight passed: syntax check ok".into()
        } else {
            format!("preflight failed:\n{}", String::from_utf8_lossy(&out.stderr))
        })
    }

    async fn show_trial(&self, trial: TrialNo) -> Result<String, BenchError> {
        Ok(format!("trial {trial}: lr 0.1 -> 0.05, kept, accuracy 0.61"))
    }

    async fn diff_trials(&self, from: TrialNo, to: TrialNo) -> Result<String, BenchError> {
        Err(BenchError::Refused(format!("no diff between {from} and {to} in this test")))
    }

    fn keep_transcript(&self, transcript: Transcript) {
        self.transcripts.lock().unwrap().push(transcript);
    }
}
