//! A search's turns in a finished study, asked again: for each proposal one specialist made, the
//! history it saw is rebuilt from the study's exported lineage and the search is asked with many
//! seeds, to see where a change to the search would have sent it, in seconds, before the slower
//! side-by-side runs of `bench/optuna_compare.py`.
//!
//!     postdoc -C RECIPE export --format jsonl > lineage.jsonl
//!     cargo run --release -p postdoc-search --example replay -- RECIPE lineage.jsonl SPECIALIST [DRAWS] [SHARE]
//!
//! A turn's history is every trial that had finished when the proposal was made, each with its
//! knob values rebuilt from its parent's and its edit, and with the score, label, artifact bytes
//! and training seconds the study recorded. SHARE is the trials the study expected each search
//! to get (the trial budget over the specialists, rounded up); it sets the length of the random
//! start. For each turn it prints what was proposed and how it ended, the notes the replayed
//! proposals gave, and each knob's spread over them (10th, 50th and 90th percentiles, or each
//! option's share).

use postdoc_core::knob::format_float;
use postdoc_core::knobs_file::read_knobs;
use postdoc_core::{Edit, KnobSpec, KnobValue, KnobValues, Manifest, Observation};
use postdoc_search::{Tpe, TpeSettings};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [recipe, lineage, name, rest @ ..] = args.as_slice() else {
        return Err("usage: replay RECIPE LINEAGE.jsonl SPECIALIST [DRAWS] [SHARE]".into());
    };
    let draws: u64 = rest.first().map_or(Ok(200), |s| s.parse())?;
    let share: Option<usize> = rest.get(1).map(|s| s.parse()).transpose()?;
    let recipe = Path::new(recipe);
    let manifest = Manifest::parse(&read(&recipe.join("postdoc.toml"))?, "postdoc.toml")?;
    let searches: Vec<_> = manifest.specialists.iter().filter(|s| !s.knobs.is_empty()).collect();
    let spec = searches.iter().find(|s| s.name == *name).ok_or(format!("{name}: no search specialist of that name"))?;
    let every: BTreeMap<String, KnobSpec> = searches.iter().flat_map(|s| s.knobs.clone()).collect();
    let mut start = KnobValues::new();
    for s in &searches {
        if let Some(file) = &s.knobs_file {
            start.extend(read_knobs(&read(&recipe.join(file))?, s.knobs.keys()));
        }
    }
    let own_start: KnobValues =
        start.iter().filter(|(k, _)| spec.knobs.contains_key(*k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let share = share.unwrap_or((manifest.study.budget.max_trials as usize).div_ceil(searches.len().max(1)));
    let tpe = Tpe::new(name.clone(), spec.knobs.clone(), TpeSettings::with_share(share)).with_others(every);

    let mut rows: Vec<Value> = read(Path::new(lineage))?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("{lineage}:{}: {e}", i + 1)))
        .collect::<Result<_, _>>()?;
    rows.sort_by_key(|r| r["id"].as_u64());
    // Each trial's knob values: its parent's, with its own edit on top.
    let mut values: BTreeMap<u64, KnobValues> = BTreeMap::new();
    for r in &rows {
        let id = r["id"].as_u64().ok_or("a trial without an id")?;
        let mut v = r["parent"].as_u64().and_then(|p| values.get(&p)).unwrap_or(&start).clone();
        if let Ok(Edit::Knobs { values: edit }) = serde_json::from_value::<Edit>(r["edit"].clone()) {
            v.extend(edit);
        }
        values.insert(id, v);
    }
    // As the study saw each trial (`Observation::of_trial`, what the session builds too).
    let observe = |r: &Value| -> Option<Observation> {
        Some(Observation::of_trial(
            values.get(&r["id"].as_u64()?)?.clone(),
            r["label"].as_str()?.parse().ok()?,
            r["score"].as_f64(),
            r["artifact_bytes"].as_u64(),
            r["train_seconds"].as_f64().unwrap_or(0.0),
            r["runs"].as_u64().unwrap_or(1) as u32,
            &manifest,
        ))
    };

    for (turn, r) in rows.iter().filter(|r| r["specialist"] == name.as_str()).enumerate() {
        let proposed_at = r["created_ms"].as_i64().unwrap_or(i64::MAX);
        let history: Vec<Observation> = rows
            .iter()
            .filter(|h| h["finished_ms"].as_i64().is_some_and(|f| f <= proposed_at) && !h["commit"].is_null())
            .filter_map(observe)
            .collect();
        let id = r["id"].as_u64().unwrap_or_default();
        let recipe_knobs = r["parent"].as_u64().and_then(|p| values.get(&p)).unwrap_or(&start);
        let proposed: Vec<String> =
            spec.knobs.keys().filter_map(|k| Some(format!("{k}={}", values[&id].get(k)?))).collect();
        println!(
            "turn {turn}, trial {id}: {} -> {} {}",
            proposed.join(" "),
            r["label"].as_str().unwrap_or("-"),
            r["score"].as_f64().map_or("-".to_string(), |s| format!("{s:.4}"))
        );
        let mut notes: BTreeMap<String, u64> = BTreeMap::new();
        let mut drawn: BTreeMap<String, Vec<KnobValue>> = BTreeMap::new();
        for seed in 0..draws {
            let (v, note) = tpe.suggest(&history, &own_start, recipe_knobs, &mut ChaCha8Rng::seed_from_u64(seed));
            *notes.entry(note.split(';').next().unwrap_or_default().to_string()).or_default() += 1;
            for (k, x) in v {
                drawn.entry(k).or_default().push(x);
            }
        }
        for (note, n) in &notes {
            println!("  {:>3.0}% {note}", 100.0 * *n as f64 / draws as f64);
        }
        for (k, xs) in &drawn {
            println!("  {k}: {}", spread(xs));
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, Box<dyn Error>> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// "p10 2.1e-4  p50 0.0013  p90 0.0071" for numbers, "cosine 40%  linear 35%  ..." for options.
fn spread(xs: &[KnobValue]) -> String {
    let mut numbers: Vec<f64> = xs
        .iter()
        .filter_map(|x| match x {
            KnobValue::Float(f) => Some(*f),
            KnobValue::Int(i) => Some(*i as f64),
            _ => None,
        })
        .collect();
    if numbers.len() == xs.len() && !numbers.is_empty() {
        numbers.sort_by(f64::total_cmp);
        let at = |q: f64| numbers[((numbers.len() - 1) as f64 * q).round() as usize];
        return format!("p10 {}  p50 {}  p90 {}", format_float(at(0.1)), format_float(at(0.5)), format_float(at(0.9)));
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for x in xs {
        *counts.entry(x.to_string()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(o, n)| format!("{o} {:.0}%", 100.0 * *n as f64 / xs.len() as f64))
        .collect::<Vec<_>>()
        .join("  ")
}
