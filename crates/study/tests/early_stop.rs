//! Multi-fidelity: a run clearly behind the others at a rung is stopped there, labelled
//! `discard` with where it stopped, and costs less than a full run; a good run goes on.

mod common;

use common::*;
use postdoc_core::{Edit, KnobValue, Label, Proposal, ProposalRequest, ProposeError, Specialist};
use postdoc_store::Store;
use postdoc_study::RunOptions;
use std::sync::{Arc, Mutex};

/// Ten steps of 0.2 s, each reporting a dev accuracy set by the `quality` knob.
const TRAIN: &str = r#"#!/bin/sh
q=$(sed -n 's/^quality = \(.*\)/\1/p' recipe.toml)
i=1
while [ $i -le 10 ]; do
  echo "{\"step\": $i, \"dev_accuracy\": $q}" >> "$POSTDOC_METRICS"
  sleep 0.2
  i=$((i+1))
done
echo "$q" > "$POSTDOC_OUT/q"
"#;

const MANIFEST: &str = r#"
[study]
name = "asha"
objective = { metric = "accuracy", direction = "maximize" }
budget = { max_trials = 2 }

[run]
command = "sh train.sh"
budget = { seconds = 20 }

[evaluate]
command = "echo \"{\\\"accuracy\\\": $(cat $POSTDOC_OUT/q)}\""
budget = { seconds = 5 }
protected = ["postdoc.toml"]

[noise]
baseline_repeats = 2
confirm_seeds = 0

[early_stop]
metric = "dev_accuracy"
rungs = [3, 6]
keep = 0.5
min_runs = 3

[[specialist]]
name = "quality"
knobs_file = "recipe.toml"
knobs = { quality = { float = [0.0, 1.0] } }
"#;

/// Proposes the listed qualities in order.
struct Scripted(Mutex<Vec<f64>>);

#[async_trait::async_trait]
impl Specialist for Scripted {
    fn name(&self) -> &str {
        "quality"
    }
    async fn propose(&self, _: ProposalRequest<'_>) -> Result<Proposal, ProposeError> {
        let q = self.0.lock().unwrap().remove(0);
        Ok(Proposal {
            specialist: "quality".into(),
            hypothesis: format!("quality {q}"),
            expected_delta: None,
            parent: None,
            edit: Edit::Knobs { values: [("quality".to_string(), KnobValue::Float(q))].into() },
            cites: Vec::new(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_clearly_behind_stop_at_their_rung() {
    let recipe =
        recipe_from_files(&[("train.sh", TRAIN), ("recipe.toml", "quality = 0.5\n"), ("postdoc.toml", MANIFEST)]);
    let url = sqlite_url(recipe.path());
    let options = RunOptions {
        specialists: vec![Arc::new(Scripted(Mutex::new(vec![0.1, 0.9])))],
        grace: Some(std::time::Duration::from_millis(200)),
        ..Default::default()
    };
    run(recipe.path(), &url, options).await.unwrap();
    let store = Store::open(&url).await.unwrap();
    let study = store.study("asha").await.unwrap();
    let trials = store.trials(study.id).await.unwrap();
    let baseline = &trials[0];
    assert_eq!(baseline.label, Some(Label::Keep), "{:?}", baseline.reason);

    // At the first rung: the baseline's two runs (0.5) and this one (0.1); half go on.
    let behind = &trials[1];
    let reason = behind.reason.clone().unwrap_or_default();
    assert_eq!(behind.label, Some(Label::Discard), "{reason}");
    assert!(reason.starts_with("stopped early at step 3: dev_accuracy 0.1 at the step-3 rung"), "{reason}");
    assert!(reason.contains("the best 50% of 3 runs reached 0.5"), "{reason}");
    assert_eq!(behind.score, None, "a stopped run is not evaluated");
    let full = baseline.train_seconds / 2.0;
    assert!(behind.train_seconds < 0.7 * full, "stopped at 3 of 10 steps: {} s of {full} s", behind.train_seconds);

    let ahead = &trials[2];
    assert_eq!(ahead.label, Some(Label::Keep), "{:?}", ahead.reason);
    assert_eq!(ahead.score, Some(0.9));

    // Every run's value at every rung it reached is in the lineage, for the next session.
    let rungs = store.events_of_kind(study.id, "rung").await.unwrap();
    let per_trial = |n: u64| rungs.iter().filter(|e| e.trial == Some(n)).count();
    assert_eq!((per_trial(0), per_trial(1), per_trial(2)), (4, 1, 2));
    // The baseline's values are marked: their spread is the noise a run must be behind by.
    for e in &rungs {
        assert_eq!(e.payload["baseline"], serde_json::json!(e.trial == Some(0)), "{:?}", e.payload);
    }
}
