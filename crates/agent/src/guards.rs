//! Guards that end a proposal going nowhere: the same call over and over, or a short cycle of
//! calls. The agent is told once; the next time the proposal ends.

/// What the guard makes of the latest call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Fine,
    /// The first repetition: tell the agent.
    Warn(String),
    /// Repeating after the warning: end the proposal.
    End(String),
}

/// Watches the sequence of calls for a block of 1 to `MAX_CYCLE` calls repeated back to back.
#[derive(Debug, Default)]
pub(crate) struct Repetition {
    calls: Vec<String>,
    warned: bool,
}

const MAX_CYCLE: usize = 3;

impl Repetition {
    /// Records a call, given as its tool name and its arguments in a canonical form.
    pub(crate) fn observe(&mut self, tool: &str, canonical_args: &str) -> Verdict {
        self.calls.push(format!("{tool} {canonical_args}"));
        let n = self.calls.len();
        let Some(cycle) = (1..=MAX_CYCLE).find(|&k| n >= 2 * k && self.calls[n - k..] == self.calls[n - 2 * k..n - k])
        else {
            return Verdict::Fine;
        };
        let what = if cycle == 1 {
            format!("the same `{tool}` call twice in a row")
        } else {
            format!("the same {cycle} calls twice over")
        };
        if self.warned {
            return Verdict::End(format!("repeated {what} after being warned"));
        }
        self.warned = true;
        // A fresh start: only a new full repetition ends the proposal.
        self.calls.clear();
        Verdict::Warn(format!(
            "You made {what}; the results will not change. Try something different or submit. \
             Another repetition ends this proposal."
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(calls: &[(&str, &str)]) -> Vec<Verdict> {
        let mut g = Repetition::default();
        calls.iter().map(|(t, a)| g.observe(t, &postdoc_brain::canonical_arguments(a))).collect()
    }

    #[test]
    fn a_repeated_call_is_warned_once_then_ends_the_proposal() {
        let v = run(&[
            ("read_file", r#"{"path":"a"}"#),
            ("read_file", r#"{ "path" : "a" }"#),
            ("read_file", r#"{"path":"a"}"#),
            ("read_file", r#"{"path":"a"}"#),
        ]);
        assert_eq!(v[0], Verdict::Fine);
        assert!(matches!(&v[1], Verdict::Warn(w) if w.contains("twice in a row")), "{v:?}");
        assert_eq!(v[2], Verdict::Fine, "after the warning a new full repetition is needed");
        assert!(matches!(&v[3], Verdict::End(_)), "{v:?}");
    }

    #[test]
    fn short_cycles_are_caught_and_progress_is_not() {
        let v = run(&[("a", "1"), ("b", "2"), ("a", "1"), ("b", "2")]);
        assert!(matches!(&v[3], Verdict::Warn(w) if w.contains("same 2 calls")), "{v:?}");
        let v = run(&[("a", "1"), ("b", "2"), ("c", "3"), ("a", "1"), ("b", "2"), ("c", "3")]);
        assert!(matches!(&v[5], Verdict::Warn(_)), "{v:?}");
        let progress = run(&[("edit", "1"), ("preflight", "{}"), ("edit", "2"), ("preflight", "{}"), ("edit", "3")]);
        assert!(progress.iter().all(|v| *v == Verdict::Fine), "{progress:?}");
    }
}
