//! What an agent is told: its role, the study's objective and budgets, what it may change, and
//! (in the first message) the lineage and the recipe's state.

use postdoc_core::manifest::SpecialistSpec;
use postdoc_core::{Direction, KnobSpec, KnobValues, LineageView, Manifest, Objective, PathSet};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The rules of the study as they concern one specialist.
#[derive(Debug, Clone)]
pub struct Brief {
    pub specialist: String,
    /// What the researcher asked this specialist to work on.
    pub role: String,
    pub objective: Objective,
    /// The run's hard limits, in words ("600 s of training, 2 GiB of memory").
    pub limits: String,
    pub surface: PathSet,
    pub protected: PathSet,
    /// Held-out data the specialist may not even read (the contamination benchmark).
    pub hidden: PathSet,
    pub knobs_file: Option<String>,
    pub knobs: BTreeMap<String, KnobSpec>,
}

impl Brief {
    pub fn new(manifest: &Manifest, spec: &SpecialistSpec, role: &str) -> Brief {
        let mut surface = spec.surface.clone();
        surface.extend(spec.knobs_file.clone());
        let run = &manifest.run.budget;
        let mut limits = format!("{} s of training", run.seconds.0);
        if let Some(m) = run.memory {
            let _ = write!(limits, ", {m} of memory");
        }
        let _ = write!(limits, ", {} s of evaluation", manifest.evaluate.budget.seconds.0);
        if let Some(cap) = manifest.evaluate.artifact_max_bytes {
            let _ = write!(limits, ", artifacts of at most {cap}");
        }
        let hidden: Vec<String> =
            manifest.evaluate.contamination.as_ref().map(|c| c.benchmark.clone()).unwrap_or_default();
        Brief {
            specialist: spec.name.clone(),
            role: role.to_string(),
            objective: manifest.study.objective.clone(),
            limits,
            surface: PathSet::new(&surface).expect("validated with the manifest"),
            protected: PathSet::new(&manifest.evaluate.protected).expect("validated with the manifest"),
            hidden: PathSet::new(&hidden).expect("validated with the manifest"),
            knobs_file: spec.knobs_file.clone(),
            knobs: spec.knobs.clone(),
        }
    }

    /// The system prompt.
    pub fn system_prompt(&self, max_turns: u32) -> String {
        let direction = match self.objective.direction {
            Direction::Maximize => "raise",
            Direction::Minimize => "lower",
        };
        let mut s = format!(
            "You are `{}`, a specialist in an automated research study of a machine-learning training recipe. {}\n\n\
             Goal: {direction} `{}`. Each trial trains the recipe under hard limits ({}) and a protected evaluator \
             scores it. A trial that crashes, runs over its limits or trains on the benchmark is wasted.\n\n\
             You may change only these files: {}.",
            self.specialist,
            self.role.trim(),
            self.objective.metric,
            self.limits,
            self.surface.globs().join(", "),
        );
        if let Some(file) = &self.knobs_file {
            let _ = write!(s, " Knobs in `{file}` (set them with set_knob):");
            for (name, spec) in &self.knobs {
                let _ = write!(s, "\n- {name}: {}", describe_knob(spec));
            }
        }
        if !self.protected.globs().is_empty() {
            let _ = write!(s, "\nProtected (never editable): {}.", self.protected.globs().join(", "));
        }
        let _ = write!(
            s,
            "\n\nHow to work: read the lineage in the first message (what was tried, what failed and why), \
             look at the code, make one focused change you expect to improve the score, run preflight to check it, \
             then call submit with a one-line hypothesis and the change in `{}` you expect. \
             Edits are search/replace: quote the exact current text. You have at most {max_turns} turns; \
             a session that does not submit is lost.",
            self.objective.metric
        );
        s
    }

    /// The first message: the lineage view and where the draft starts.
    pub fn first_message(&self, view: &LineageView, parent: u64, knobs: &KnobValues) -> String {
        let mut s = view.render();
        let _ = write!(s, "\n\nYour draft starts from trial {parent}'s recipe.");
        if let Some(file) = &self.knobs_file
            && !knobs.is_empty()
        {
            let _ = write!(s, " Its knob values in `{file}`:");
            for (name, value) in knobs {
                let _ = write!(s, "\n- {name} = {value}");
            }
        }
        s
    }
}

fn describe_knob(spec: &KnobSpec) -> String {
    match spec {
        KnobSpec::Float([lo, hi]) => format!("a number in [{lo}, {hi}]"),
        KnobSpec::LogFloat([lo, hi]) => format!("a number in [{lo}, {hi}] (log scale)"),
        KnobSpec::Int([lo, hi]) => format!("an integer in [{lo}, {hi}]"),
        KnobSpec::Choice(values) => {
            format!("one of {}", values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "))
        }
    }
}
