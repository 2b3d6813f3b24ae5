//! Every label the classifier can give, each produced by a real recipe doing the real thing.

mod common;

use common::*;
use postdoc_core::{Edit, KnobValue, Label, Proposal, ProposalRequest, ProposeError, Specialist};
use postdoc_store::Store;
use postdoc_study::RunOptions;
use std::sync::Arc;

/// A recipe whose behaviour is chosen by the `mode` knob: train.sh branches on it.
const TRAIN: &str = r#"#!/bin/sh
mode=$(sed -n 's/^mode = "\(.*\)"/\1/p' recipe.toml)
case "$mode" in
  crash) echo "step 1"; python3 -c 'import sys; 1/0' ;;
  slow) sleep 30 ;;
  big) head -c 5000 /dev/zero > "$POSTDOC_OUT/model.bin" ;;
  hang_eval) echo hang > "$POSTDOC_OUT/mode" ;;
  nan) echo nan > "$POSTDOC_OUT/mode" ;;
  low) echo low > "$POSTDOC_OUT/mode" ;;
  good) echo good > "$POSTDOC_OUT/mode" ;;
  *) echo base > "$POSTDOC_OUT/mode" ;;
esac
"#;

const EVAL: &str = r#"#!/bin/sh
mode=$(cat "$POSTDOC_OUT/mode" 2>/dev/null)
case "$mode" in
  hang) sleep 30 ;;
  nan) echo '{"score": NaN}' ;;
  low) echo '{"score": 0.1}' ;;
  good) echo "{\"score\": $(( 50 + POSTDOC_SEED % 3 ))}" ;;
  *) echo '{"score": 1}' ;;
esac
"#;

const MANIFEST: &str = r#"
[study]
name = "labels"
objective = { metric = "score", direction = "maximize" }
budget = { max_trials = 1 }

[run]
command = "sh train.sh"
preflight = "sh -n train.sh"
budget = { seconds = 2 }

[evaluate]
command = "sh eval.sh"
budget = { seconds = 2 }
protected = ["eval.sh"]
gates = ["score >= 0.5"]
artifact_max_bytes = 1000

[noise]
baseline_repeats = 2
confirm_seeds = 1

[[specialist]]
name = "scripted"
knobs_file = "recipe.toml"
knobs = { mode = { choice = ["base", "crash", "slow", "big", "hang_eval", "nan", "low", "good"] } }
surface = ["train.sh"]
"#;

/// Proposes exactly the edit it was built with.
struct Scripted(Edit);

#[async_trait::async_trait]
impl Specialist for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    async fn propose(&self, _: ProposalRequest<'_>) -> Result<Proposal, ProposeError> {
        Ok(Proposal {
            specialist: "scripted".into(),
            hypothesis: "scripted".into(),
            expected_delta: None,
            parent: None,
            edit: self.0.clone(),
            cites: Vec::new(),
        })
    }
}

fn mode(m: &str) -> Edit {
    Edit::Knobs { values: [("mode".to_string(), KnobValue::Text(m.into()))].into() }
}

async fn label_of(edit: Edit) -> (Label, String, Option<String>) {
    let (label, reason, excerpt, _) = outcome_of(edit).await;
    (label, reason, excerpt)
}

async fn outcome_of(edit: Edit) -> (Label, String, Option<String>, Option<f64>) {
    let recipe = recipe_from_files(&[
        ("train.sh", TRAIN),
        ("eval.sh", EVAL),
        ("recipe.toml", "mode = \"base\"\n"),
        ("postdoc.toml", MANIFEST),
    ]);
    let url = sqlite_url(recipe.path());
    let options = RunOptions {
        specialists: vec![Arc::new(Scripted(edit))],
        grace: Some(std::time::Duration::from_millis(200)),
        ..Default::default()
    };
    run(recipe.path(), &url, options).await.unwrap();
    let store = Store::open(&url).await.unwrap();
    let study = store.study("labels").await.unwrap();
    let trials = store.trials(study.id).await.unwrap();
    assert_eq!(trials[0].label, Some(Label::Keep), "baseline: {:?}", trials[0].reason);
    let t = trials.iter().find(|t| !t.is_baseline()).unwrap();
    (t.label.unwrap(), t.reason.clone().unwrap_or_default(), t.log_excerpt.clone(), t.score)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_gets_its_label() {
    let (label, reason, excerpt) = label_of(mode("crash")).await;
    assert_eq!(label, Label::Crash, "{reason}");
    assert!(excerpt.unwrap().ends_with("ZeroDivisionError: division by zero"), "the excerpt ends with the traceback");

    let (label, reason, _) = label_of(mode("slow")).await;
    assert_eq!(label, Label::TrainOverrun, "{reason}");
    assert!(reason.contains("over its 2s budget"), "{reason}");

    let (label, reason, _) = label_of(mode("big")).await;
    assert_eq!(label, Label::SizeBlocked, "{reason}");
    assert!(reason.contains("5000 bytes"), "{reason}");

    let (label, reason, _) = label_of(mode("hang_eval")).await;
    assert_eq!(label, Label::EvalOverrun, "{reason}");

    let (label, reason, _) = label_of(mode("nan")).await;
    assert_eq!(label, Label::Crash, "{reason}");
    assert!(reason.contains("score = NaN"), "{reason}");

    let (label, reason, _) = label_of(mode("low")).await;
    assert_eq!(label, Label::GateMiss, "{reason}");
    assert!(reason.contains("score >= 0.5"), "{reason}");

    let (label, reason, _) = label_of(mode("good")).await;
    assert_eq!(label, Label::Keep, "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_edits_are_stopped_before_any_compute() {
    let touch_eval = "--- a/eval.sh\n+++ b/eval.sh\n@@ -1,2 +1,2 @@\n-#!/bin/sh\n+#!/bin/sh -x\n mode=$(cat \"$POSTDOC_OUT/mode\" 2>/dev/null)\n";
    let (label, reason, _) = label_of(Edit::Patch { diff: touch_eval.into() }).await;
    assert_eq!(label, Label::IllegalEdit, "{reason}");
    assert!(reason.contains("`eval.sh` is protected"), "{reason}");

    let outside = "--- /dev/null\n+++ b/notes.txt\n@@ -0,0 +1 @@\n+hello\n";
    let (label, reason, _) = label_of(Edit::Patch { diff: outside.into() }).await;
    assert_eq!(label, Label::IllegalEdit, "{reason}");
    assert!(reason.contains("outside the surface"), "{reason}");

    let stale = "--- a/train.sh\n+++ b/train.sh\n@@ -1 +1 @@\n-#!/bin/bash\n+#!/bin/zsh\n";
    let (label, reason, _) = label_of(Edit::Patch { diff: stale.into() }).await;
    assert_eq!(label, Label::InvalidProposal, "{reason}");

    let (label, reason, _) = label_of(mode("warp-speed")).await;
    assert_eq!(label, Label::InvalidProposal, "{reason}");
    assert!(reason.contains("outside its range"), "{reason}");

    let syntax = "--- a/train.sh\n+++ b/train.sh\n@@ -1,2 +1,3 @@\n #!/bin/sh\n+if then fi (\n mode=$(sed -n 's/^mode = \"\\(.*\\)\"/\\1/p' recipe.toml)\n";
    let (label, reason, _) = label_of(Edit::Patch { diff: syntax.into() }).await;
    assert_eq!(label, Label::PreflightCrash, "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_pristine_copy_is_never_used() {
    // The recipe rewrites the evaluator inside the study's folder; the harness copies and checks
    // the pristine files afresh for every evaluation, so the cheat scores nothing.
    let cheat = "--- a/train.sh\n+++ b/train.sh\n@@ -1,2 +1,3 @@\n #!/bin/sh\n+for f in \"$POSTDOC_OUT\"/../eval/eval.sh ../../.postdoc/studies/*/trials/*/run-*/eval/eval.sh; do echo 'echo {\\\"score\\\": 1000}' > \"$f\" 2>/dev/null; done\n mode=$(sed -n 's/^mode = \"\\(.*\\)\"/\\1/p' recipe.toml)\n";
    let (label, reason, _) = label_of(Edit::Patch { diff: cheat.into() }).await;
    if std::env::var_os("DEBUG_CHEAT").is_some() {
        std::thread::sleep(std::time::Duration::from_secs(1000));
    }
    assert_ne!(label, Label::Keep, "{reason}");
}
