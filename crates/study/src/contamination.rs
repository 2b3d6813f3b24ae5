//! The contamination rule at the edges: the benchmark read from the pristine protected files,
//! the run's training examples read from its output folder.

use crate::StudyError;
use postdoc_core::Finding;
use postdoc_core::manifest::ContaminationSpec;
use postdoc_data::contamination::{EvalIndex, Record, Settings, items_of_file};
use postdoc_eval::Pristine;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// The benchmark's items, indexed once per session.
pub(crate) fn benchmark_index(pristine: &Pristine, spec: &ContaminationSpec) -> Result<EvalIndex, StudyError> {
    let mut items = Vec::new();
    for path in &spec.benchmark {
        let file = pristine.file(path).ok_or_else(|| StudyError::BenchmarkMissing(path.clone()))?;
        items.extend(items_of_file(path, &String::from_utf8_lossy(&file.contents), &spec.fields));
    }
    Ok(EvalIndex::new(items, Settings { ngram: spec.ngram, min_chars: spec.min_chars }))
}

/// The finding for a run whose training examples (in `out_dir`) hold more of the benchmark than
/// chance allows, or that left none to check; `None` for a clean run.
pub(crate) fn check_run(index: &EvalIndex, spec: &ContaminationSpec, out_dir: &Path) -> Option<Finding> {
    let path = out_dir.join(&spec.train_data);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            return Some(Finding::Contaminated {
                reason: format!(
                    "the run left no training examples to check ($POSTDOC_OUT/{}: {e}); \
                     a score that cannot be checked against the benchmark is not trusted",
                    spec.train_data
                ),
            });
        }
    };
    // A line that is not UTF-8 ends the file's use: what was read so far is still checked.
    let records = BufReader::new(file).lines().map_while(Result::ok).map(|l| Record::from_json_line(&l));
    let report = index.scan(records);
    if report.fraction() <= spec.max_overlap {
        return None;
    }
    let first = report.overlaps[0];
    Some(Finding::Contaminated {
        reason: format!(
            "trained on the benchmark: {} of its {} items ({:.1}%, over the {:.1}% allowed) are in {}; \
             e.g. {} in line {} ({})",
            report.overlaps.len(),
            report.items,
            100.0 * report.fraction(),
            100.0 * spec.max_overlap,
            spec.train_data,
            index.name(first.item),
            first.row + 1,
            first.kind
        ),
    })
}
