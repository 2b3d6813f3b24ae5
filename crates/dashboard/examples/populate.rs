//! Fills a lineage store with a long synthetic study, for the dashboard's benchmark
//! (`bench/dashboard.py`): `cargo run --release -p postdoc-dashboard --example populate -- URL
//! MANIFEST TRIALS`. Every trial goes through the store's real calls (propose, start, a run,
//! the verdict), with labels, scores, parents and a metric curve like a real study's.

use postdoc_core::{
    BASELINE_SPECIALIST, Edit, KnobValue, Label, MetricPoint, Proposal, RunPurpose, RunRecord, Verdict,
};
use postdoc_store::{Store, StudyRecord, now_ms};
use std::collections::BTreeMap;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, manifest, trials] = args.as_slice() else {
        eprintln!("usage: populate STORE_URL MANIFEST TRIALS");
        std::process::exit(2);
    };
    let trials: u64 = trials.parse().expect("TRIALS is a number");
    let manifest_text = std::fs::read_to_string(manifest).expect("the manifest");
    let parsed = postdoc_core::Manifest::parse(&manifest_text, manifest).expect("a valid manifest");
    let store = Store::open(url).await.expect("the store");
    let study = store
        .create_study(&StudyRecord {
            id: 0,
            name: parsed.study.name.clone(),
            recipe: ".".into(),
            base_commit: "0000000".into(),
            manifest: manifest_text,
            comparability: "{}".into(),
            protected_hash: "sha256:0".into(),
            created_ms: now_ms(),
        })
        .await
        .expect("a new study");
    let specialists = ["optimizer", "data", "rl"];
    let labels = [
        (Label::Discard, 70u64),
        (Label::Crash, 8),
        (Label::SizeBlocked, 8),
        (Label::TrainOverrun, 6),
        (Label::GateMiss, 5),
        (Label::HarnessAbort, 3),
    ];
    let (mut best, mut best_score) = (0u64, 0.10f64);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let started = std::time::Instant::now();
    for n in 0..=trials {
        let specialist = if n == 0 { BASELINE_SPECIALIST } else { specialists[(n % 3) as usize] };
        let edit = Edit::Knobs { values: [("lr".to_string(), KnobValue::Float(1e-3 * (1.0 + next())))].into() };
        let proposal = Proposal {
            specialist: specialist.into(),
            hypothesis: format!(
                "tpe: lr 0.001 -> {:.5} (modelled on the best 5 of {n} scored trials)",
                1e-3 * (1.0 + next())
            ),
            expected_delta: None,
            parent: None,
            edit,
            cites: Vec::new(),
        };
        let parent = (n > 0).then_some(best);
        let number = store.propose(study.id, &proposal, parent, None).await.expect("propose");
        store
            .start(study.id, number, "0000000", "diff --git a/recipe.toml b/recipe.toml\n-lr = 0.001\n+lr = 0.0012\n")
            .await
            .expect("start");
        // A keep now and then, each a little better; the rest by the mix above.
        let keep = n == 0 || next() < 0.002;
        let mut roll = next() * 100.0;
        let label = if keep {
            Label::Keep
        } else {
            labels
                .iter()
                .find(|(_, p)| {
                    roll -= *p as f64;
                    roll < 0.0
                })
                .map_or(Label::Discard, |(l, _)| *l)
        };
        let score = match label {
            Label::Keep => Some(if n == 0 { best_score } else { best_score + 0.01 * next() + 0.001 }),
            Label::Discard | Label::GateMiss => Some(best_score - 0.2 * next()),
            _ => None,
        };
        let run = RunRecord {
            idx: 0,
            purpose: if n == 0 { RunPurpose::Baseline } else { RunPurpose::Screen },
            seed: n,
            exit_code: Some(if score.is_some() { 0 } else { 1 }),
            signal: None,
            timed_out: label == Label::TrainOverrun,
            train_seconds: 20.0 + 40.0 * next(),
            eval_seconds: 2.0,
            cpu_seconds: Some(20.0),
            peak_rss_bytes: Some(200 << 20),
            artifact_bytes: Some(1 << 20),
            score,
            scores: score.map(|s| BTreeMap::from([("accuracy".to_string(), s)])).unwrap_or_default(),
            findings: vec![],
            log_tail: "step 800 dev_loss 1.23\n".into(),
            eval_log_tail: String::new(),
            started_ms: now_ms(),
            finished_ms: now_ms(),
        };
        store.record_run(study.id, number, &run).await.expect("run");
        if n % 100 == 0 {
            let curve: Vec<MetricPoint> = (0..20)
                .map(|i| MetricPoint {
                    run_idx: 0,
                    step: Some(i * 100),
                    name: "dev_loss".into(),
                    value: 2.0 / (1.0 + i as f64),
                    at_ms: now_ms(),
                })
                .collect();
            store.record_metrics(study.id, number, &curve).await.expect("metrics");
        }
        let verdict = Verdict { label, reason: format!("{label} (synthetic)"), excerpt: None };
        store.finish(study.id, number, &verdict).await.expect("finish");
        if label == Label::Keep {
            best = number;
            best_score = score.unwrap_or(best_score);
        }
        if n % 10_000 == 0 && n > 0 {
            eprintln!("{n} trials in {:.0} s", started.elapsed().as_secs_f64());
        }
    }
    println!("{} {}", study.name, trials + 1);
}
