//! The keep rule on recipes whose score is pure noise, and on one with a real effect.

mod common;

use common::*;
use postdoc_core::Label;
use postdoc_store::Store;
use postdoc_study::RunOptions;

/// Every edit is a no-op: the score is a uniform draw decided by the seed alone.
fn noise_recipe(effect: &str) -> tempfile::TempDir {
    let manifest = r#"
[study]
name = "noise"
objective = { metric = "score", direction = "maximize" }
budget = { max_trials = 60 }
parallel = 2

[run]
command = "awk -v s=$POSTDOC_SEED -v x=$(sed -n 's/^x = //p' recipe.toml) 'BEGIN { srand(s); print rand() + EFFECT }' > $POSTDOC_OUT/value"
budget = { seconds = 10 }

[[specialist]]
name = "knob"
knobs_file = "recipe.toml"
knobs = { x = { float = [0.0, 1.0] } }
"#
    .replace("EFFECT", effect);
    recipe_scored_by_run(&manifest, "x = 0.5\n")
}

async fn keeps(effect: &str, max_trials: u64) -> (usize, Vec<postdoc_core::TrialRecord>) {
    let recipe = noise_recipe(effect);
    let url = sqlite_url(recipe.path());
    run(recipe.path(), &url, RunOptions { max_trials: Some(max_trials), ..Default::default() }).await.unwrap();
    let store = Store::open(&url).await.unwrap();
    let study = store.study("noise").await.unwrap();
    let trials = store.trials(study.id).await.unwrap();
    let counted: Vec<_> = trials.iter().filter(|t| t.is_counted()).collect();
    assert_eq!(counted.len() as u64, max_trials);
    let kept = counted.iter().filter(|t| t.label == Some(Label::Keep)).count();
    (kept, trials)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pure_noise_study_keeps_at_most_two_of_sixty() {
    let (kept, trials) = keeps("0", 60).await;
    assert!(kept <= 2, "kept {kept} of 60 trials of pure noise");
    // The rule did look closely at some candidates rather than discarding blindly.
    let confirmed = trials.iter().filter(|t| t.runs > 1 && !t.is_baseline()).count();
    eprintln!("kept {kept}, confirmed {confirmed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_effect_is_kept() {
    // The same noise plus a gain proportional to the knob: raising x is a real improvement.
    let (kept, trials) = keeps("x", 12).await;
    assert!(kept >= 1, "a real effect of up to +0.5 on a uniform score must be kept at least once");
    let best = postdoc_core::lineage::current_best(&trials).unwrap();
    assert!(!best.is_baseline());
}
