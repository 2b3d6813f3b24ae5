//! How fast the local model reads and writes on this machine: medians of several runs.
//!
//!     cargo run --release -p postdoc-local-brain --example speed [MODEL.gguf] [RUNS]
//!
//! Without a file, the default model is fetched into the model cache. `RAYON_NUM_THREADS`
//! sets the threads the kernels use.

use postdoc_local_brain::{LocalModel, default_model, model_cache};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = match args.next() {
        Some(p) => PathBuf::from(p),
        None => default_model(&model_cache())?,
    };
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(5);
    let started = std::time::Instant::now();
    let model = LocalModel::load(&path)?;
    println!("loaded {} in {:.2} s", path.display(), started.elapsed().as_secs_f64());
    for prompt in [256, 1024, 2048] {
        let mut prefill = Vec::new();
        let mut decode = Vec::new();
        for _ in 0..runs {
            let speed = model.measure(prompt, 64)?;
            prefill.push(speed.prefill);
            decode.push(speed.decode);
        }
        println!(
            "prompt {prompt:>5} tokens: prefill {:>6.1} tok/s, then decode {:>6.1} tok/s (medians of {runs})",
            median(&mut prefill),
            median(&mut decode)
        );
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
