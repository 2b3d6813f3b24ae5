//! The real local model (SmolLM2-135M-Instruct, run on the CPU) as an agent in a real study: its
//! constrained tool calls go through the same tools as any model's, at least one proposal is a
//! valid trial that runs and is judged, and its transcript and token counts are in the lineage.

mod common;

use common::*;
use postdoc_core::{Label, TrialStatus};
use postdoc_store::Store;
use postdoc_study::{RunOptions, TRANSCRIPT_EVENT};
use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_model_proposes_trials_that_run_with_transcripts() {
    // The model file is fetched once for all the tests; `--brain local` names no file, so the
    // default model comes from the cache.
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("models");
    postdoc_local_brain::default_model(&cache).unwrap();
    // SAFETY: no other test in this binary reads or writes the environment. One thread for the
    // model's kernels: the trials' processes share the two cores.
    unsafe {
        std::env::set_var("POSTDOC_MODELS", &cache);
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let dir = recipe_from_example("tiny-logreg", |m| {
        let head = m.split("[[specialist]]").next().unwrap().to_string();
        head.replace("max_trials = 30", "max_trials = 2").replace("baseline_repeats = 3", "baseline_repeats = 2")
            + r#"
[[specialist]]
name = "tuner"
strategy = "agent"
role = "Tune the learning rate and the number of epochs."
knobs_file = "recipe.toml"
knobs = { lr = { log_float = [1e-3, 1.0] }, epochs = { int = [1, 12] } }
brain = { max_turns = 6, temperature = 0.8 }
"#
    });
    let url = sqlite_url(dir.path());
    let brain = postdoc_core::manifest::BrainSpec {
        provider: Some(postdoc_core::manifest::Provider::Local),
        ..Default::default()
    };
    run(dir.path(), &url, RunOptions { brain: Some(brain), ..RunOptions::default() }).await.unwrap();

    let store = Store::open(&url).await.unwrap();
    let study = store.study("tiny-logreg").await.unwrap();
    let trials = store.trials(study.id).await.unwrap();
    let proposals: Vec<_> = trials.iter().filter(|t| t.specialist == "tuner").collect();
    assert_eq!(proposals.len(), 2, "{trials:#?}");
    let mut transcripts = Vec::new();
    for t in &proposals {
        let events = store.events(study.id, Some(t.number)).await.unwrap();
        let stored = events.iter().find(|e| e.kind == TRANSCRIPT_EVENT).expect("a transcript is stored");
        let transcript: postdoc_core::Transcript = serde_json::from_value(stored.payload.clone()).unwrap();
        transcripts.push(transcript);
    }
    let told: Vec<String> = transcripts.iter().map(|t| t.render()).collect();
    eprintln!("{}", told.join("\n\n"));
    let valid: Vec<_> = proposals.iter().filter(|t| t.label != Some(Label::InvalidProposal)).collect();
    assert!(
        !valid.is_empty(),
        "no valid proposal: {:?}\n{}",
        proposals.iter().map(|t| &t.reason).collect::<Vec<_>>(),
        told.join("\n\n")
    );
    let ran = valid[0];
    assert_eq!(ran.status, TrialStatus::Finished);
    assert!(ran.patch.as_deref().is_some_and(|p| p.contains("recipe.toml")), "{:?}", ran.patch);
    assert!(!ran.hypothesis.trim().is_empty());
    assert!(ran.label.is_some() && ran.score.is_some(), "{ran:?}");

    for transcript in &transcripts {
        assert!(transcript.brain.contains("SmolLM2-135M-Instruct"), "{}", transcript.brain);
        assert!(transcript.spend.input_tokens > 500 && transcript.spend.output_tokens > 10, "{:?}", transcript.spend);
        assert_eq!(transcript.spend.dollars, 0.0, "a local model costs no dollars");
    }
    store.close().await;
}
