//! The contamination rule: a recipe that trains on the benchmark is labelled `contaminated`,
//! however well it scores; a recipe whose own problems meet the benchmark by chance is not.

mod common;

use common::*;
use postdoc_core::{Edit, KnobValue, Label, Proposal, ProposalRequest, ProposeError, Specialist};
use postdoc_store::Store;
use postdoc_study::RunOptions;
use std::sync::Arc;

/// Writes its training examples according to the `data` knob: its own problems (the first of
/// which happens to be a benchmark problem), the benchmark itself, its problems reformatted
/// around the benchmark's text, or nothing.
const TRAIN: &str = r#"#!/bin/sh
data=$(sed -n 's/^data = "\(.*\)"/\1/p' recipe.toml)
out="$POSTDOC_OUT/train_data.jsonl"
own() { i=1000; while [ $i -lt 1200 ]; do echo "{\"prompt\": \"Q: $i+$i=\", \"completion\": \"$((i+i))\"}"; i=$((i+1)); done; }
case "$data" in
  own) echo '{"prompt": "Q: 17+18=", "completion": "35"}' > "$out"; own >> "$out" ;;
  benchmark) cp benchmark/problems.jsonl "$out" ;;
  disguised) sed 's/{"prompt": "\([^"]*\)", "answer": "\([^"]*\)"}/{"text": "Solve:  \1 \2"}/' benchmark/problems.jsonl > "$out" ;;
  none) ;;
esac
echo "$data" > "$POSTDOC_OUT/data"
"#;

/// Training on the benchmark pays: the cheat scores far above an honest recipe.
const EVAL: &str = r#"#!/bin/sh
case "$(cat "$POSTDOC_OUT/data")" in
  benchmark|disguised) echo '{"accuracy": 0.99}' ;;
  *) echo "{\"accuracy\": 0.$(( 40 + POSTDOC_SEED % 3 ))}" ;;
esac
"#;

const MANIFEST: &str = r#"
[study]
name = "contamination"
objective = { metric = "accuracy", direction = "maximize" }
budget = { max_trials = 1 }

[run]
command = "sh train.sh"
budget = { seconds = 10 }

[evaluate]
command = "sh eval.sh"
budget = { seconds = 10 }
protected = ["eval.sh", "benchmark/**"]
contamination = { benchmark = ["benchmark/problems.jsonl"], fields = ["prompt"], max_overlap = 0.05 }

[noise]
baseline_repeats = 2
confirm_seeds = 0

[[specialist]]
name = "data"
knobs_file = "recipe.toml"
knobs = { data = { choice = ["own", "benchmark", "disguised", "none"] } }
"#;

fn benchmark() -> String {
    (0..40)
        .map(|i| format!("{{\"prompt\": \"Q: {}+{}=\", \"answer\": \"{}\"}}\n", 17 + i, 18 + i, 35 + 2 * i))
        .collect()
}

struct Scripted(&'static str);

#[async_trait::async_trait]
impl Specialist for Scripted {
    fn name(&self) -> &str {
        "data"
    }
    async fn propose(&self, _: ProposalRequest<'_>) -> Result<Proposal, ProposeError> {
        Ok(Proposal {
            specialist: "data".into(),
            hypothesis: format!("train on {} data", self.0),
            expected_delta: None,
            parent: None,
            edit: Edit::Knobs { values: [("data".to_string(), KnobValue::Text(self.0.into()))].into() },
            cites: Vec::new(),
        })
    }
}

/// The candidate's label, reason and score.
async fn outcome(data: &'static str) -> (Label, String, Option<f64>) {
    let bench = benchmark();
    let recipe = recipe_from_files(&[
        ("train.sh", TRAIN),
        ("eval.sh", EVAL),
        ("benchmark/problems.jsonl", &bench),
        ("recipe.toml", "data = \"own\"\n"),
        ("postdoc.toml", MANIFEST),
    ]);
    let url = sqlite_url(recipe.path());
    let options = RunOptions { specialists: vec![Arc::new(Scripted(data))], ..Default::default() };
    run(recipe.path(), &url, options).await.unwrap();
    let store = Store::open(&url).await.unwrap();
    let study = store.study("contamination").await.unwrap();
    let trials = store.trials(study.id).await.unwrap();
    assert_eq!(trials[0].label, Some(Label::Keep), "the honest baseline: {:?}", trials[0].reason);
    let t = trials.iter().find(|t| !t.is_baseline()).unwrap();
    (t.label.unwrap(), t.reason.clone().unwrap_or_default(), t.score)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_on_the_benchmark_is_caught_whatever_it_scores() {
    let (label, reason, score) = outcome("benchmark").await;
    assert_eq!(label, Label::Contaminated, "{reason}");
    assert_eq!(score, Some(0.99), "the evaluation still ran, so the lineage shows what the cheat would have scored");
    assert!(reason.contains("40 of its 40 items (100.0%, over the 5.0% allowed)"), "{reason}");
    assert!(reason.contains("benchmark/problems.jsonl:1 in line 1 (exact match)"), "{reason}");

    // Reformatting the benchmark's problems does not hide them.
    let (label, reason, _) = outcome("disguised").await;
    assert_eq!(label, Label::Contaminated, "{reason}");
    assert!(reason.contains("(normalised match)"), "{reason}");

    // A run that leaves nothing to check is not trusted either.
    let (label, reason, _) = outcome("none").await;
    assert_eq!(label, Label::Contaminated, "{reason}");
    assert!(reason.contains("left no training examples to check"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chance_meeting_with_one_benchmark_problem_is_allowed() {
    // One of the 40 items (2.5%) is in the recipe's own data, under the 5% allowed.
    let (label, reason, _) = outcome("own").await;
    assert_ne!(label, Label::Contaminated, "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contaminated_starting_recipe_stops_the_study() {
    // With no allowance the same data is caught, and the starting recipe itself uses it.
    let strict = MANIFEST.replace("max_overlap = 0.05", "max_overlap = 0.0");
    let recipe = recipe_from_files(&[
        ("train.sh", TRAIN),
        ("eval.sh", EVAL),
        ("benchmark/problems.jsonl", &benchmark()),
        ("recipe.toml", "data = \"own\"\n"),
        ("postdoc.toml", &strict),
    ]);
    let url = sqlite_url(recipe.path());
    match run(recipe.path(), &url, RunOptions::default()).await {
        Err(e @ postdoc_study::StudyError::Baseline { label: Label::Contaminated, .. }) => {
            assert!(e.to_string().contains("1 of its 40 items (2.5%, over the 0.0% allowed)"), "{e}")
        }
        other => panic!("expected a contaminated baseline, got {other:?}"),
    }
}
