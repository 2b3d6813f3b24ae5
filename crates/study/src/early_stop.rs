//! Early stopping at the edges: each run's metric lines are read as they arrive, its value at
//! every rung it reaches joins the study's rung table (and the lineage, as a `rung` event), and
//! a run that may be stopped is stopped when it is behind.

use postdoc_core::early_stop::{EarlyStopSpec, Rungs, rungs_passed};
use postdoc_core::knob::format_float;
use postdoc_core::manifest::Direction;
use postdoc_exec::MetricLine;
use postdoc_store::{EventRecord, Store};
use std::sync::Mutex;

/// The study's rung table, rebuilt from the lineage's `rung` events when a session starts.
pub(crate) struct RungTable {
    pub spec: EarlyStopSpec,
    rungs: Mutex<Rungs>,
}

/// A value a run had at a rung, as recorded in the lineage.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct RungValue {
    pub run: u32,
    pub rung: usize,
    pub step: i64,
    pub value: f64,
    /// A run of the baseline: its spread over seeds is the noise at the rung.
    #[serde(default)]
    pub baseline: bool,
}

impl RungTable {
    pub(crate) async fn load(spec: EarlyStopSpec, store: &Store, study: i64) -> Result<RungTable, crate::StudyError> {
        let mut rungs = Rungs::new(&spec);
        for event in store.events_of_kind(study, RUNG_EVENT).await? {
            if let Some(v) = rung_value(&event) {
                rungs.record(v.rung, spec.direction.gain(v.value), v.baseline);
            }
        }
        Ok(RungTable { spec, rungs: Mutex::new(rungs) })
    }
}

pub(crate) const RUNG_EVENT: &str = "rung";

fn rung_value(event: &EventRecord) -> Option<RungValue> {
    serde_json::from_value(event.payload.clone()).ok()
}

/// What a run is to early stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunRole {
    /// A seed of the baseline: measured, never stopped, and the measure of the noise.
    Baseline,
    /// A confirmation run: measured, never stopped (its trial already beat the best once).
    Confirmation,
    /// A candidate's screening run, stopped when clearly behind.
    Screen,
}

/// One run's progress through the rungs.
pub(crate) struct RunRungs<'t> {
    table: &'t RungTable,
    run: u32,
    role: RunRole,
    state: Mutex<RunState>,
}

#[derive(Default)]
struct RunState {
    last_step: Option<i64>,
    last_value: Option<f64>,
    stopped: Option<String>,
}

impl<'t> RunRungs<'t> {
    pub(crate) fn new(table: &'t RungTable, run: u32, role: RunRole) -> RunRungs<'t> {
        RunRungs { table, run, role, state: Mutex::new(RunState::default()) }
    }

    /// Reads new metric lines: returns the rung values they reach (to record) and whether the
    /// run should stop.
    pub(crate) fn read(&self, lines: &[MetricLine]) -> (Vec<RungValue>, bool) {
        let spec = &self.table.spec;
        let mut state = self.state.lock().expect("rung state");
        let mut reached = Vec::new();
        if state.stopped.is_some() {
            return (reached, false);
        }
        for line in lines {
            if let Some((_, v)) = line.values.iter().find(|(name, _)| *name == spec.metric) {
                state.last_value = Some(*v);
            }
            let Some(step) = line.step else { continue };
            let passed: Vec<usize> = rungs_passed(spec, state.last_step, step).collect();
            state.last_step = Some(step);
            let Some(value) = state.last_value else { continue };
            for rung in passed {
                let gain = spec.direction.gain(value);
                let baseline = self.role == RunRole::Baseline;
                let behind = {
                    let mut rungs = self.table.rungs.lock().expect("rung table");
                    rungs.record(rung, gain, baseline);
                    rungs.behind(spec, rung, gain)
                };
                reached.push(RungValue { run: self.run, rung, step, value, baseline });
                if let Some(b) = behind.filter(|_| self.role == RunRole::Screen) {
                    let needed = match spec.direction {
                        Direction::Maximize => b.needed,
                        Direction::Minimize => -b.needed,
                    };
                    let noise = if b.margin > 0.0 {
                        format!(", and the seeds' noise there allows {}", format_float(b.margin))
                    } else {
                        String::new()
                    };
                    state.stopped = Some(format!(
                        "stopped early at step {step}: {} {} at the step-{} rung, where the best {:.0}% of {} runs \
                         reached {}{noise}",
                        spec.metric,
                        format_float(value),
                        spec.rungs[rung],
                        100.0 * spec.keep,
                        b.runs,
                        format_float(needed)
                    ));
                    return (reached, true);
                }
            }
        }
        (reached, false)
    }

    /// Why the run was stopped, if it was.
    pub(crate) fn stopped(&self) -> Option<String> {
        self.state.lock().expect("rung state").stopped.clone()
    }
}
