//! `postdoc report`: the study as one file to send to a colleague. The HTML report is the
//! dashboard's own page with the answers to its requests written into it, so it reads the same
//! and opens anywhere without a server; the Markdown report says the same in text.

use crate::Dashboard;
use crate::api::{self, ApiError};
use base64::Engine;
use postdoc_core::TrialNo;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// The latest trials a report carries in full, beside the kept ones, the path to the best and
/// the failure examples.
const LATEST_IN_FULL: usize = 20;

/// Everything a report shows, gathered from the store once.
pub struct Report {
    /// The API's answers, by route, as the page would have asked for them.
    answers: BTreeMap<String, Value>,
    study: String,
    best_diff: Option<String>,
    generated_ms: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReportError(String);

impl From<ApiError> for ReportError {
    fn from(e: ApiError) -> ReportError {
        ReportError(e.message())
    }
}

impl Dashboard {
    /// The report of the study as it stands; `best_diff` is the best recipe's change against
    /// the study's starting commit (git's business, so the caller's).
    pub async fn report(&self, best_diff: Option<String>) -> Result<Report, ReportError> {
        let d = &self.inner;
        let snapshot = d.snapshots.current(&d.store, d.study.id).await.map_err(api::ApiError::from)?;
        let overview = api::overview_data(d, &snapshot).await?;
        let trials = api::trials_data(d, &snapshot);
        let mut full: BTreeSet<TrialNo> = BTreeSet::new();
        let numbers = |v: &Value, key: &str| -> Vec<TrialNo> {
            v[key].as_array().into_iter().flatten().filter_map(|x| x["number"].as_u64().or(x.as_u64())).collect()
        };
        full.extend(numbers(&trials, "path_to_best"));
        full.extend(numbers(&overview, "kept"));
        for examples in overview["failures"].as_object().into_iter().flat_map(|m| m.values()) {
            full.extend(examples.as_array().into_iter().flatten().filter_map(|e| e["number"].as_u64()));
        }
        full.extend(numbers(&trials["tree"], "number").into_iter().rev().take(LATEST_IN_FULL));
        let mut answers = BTreeMap::new();
        for n in full {
            answers.insert(format!("/api/trials/{n}"), api::trial_data(d, n).await?);
        }
        answers.insert("/api/specialists".into(), api::specialists_data(d, &snapshot));
        answers.insert("/api/notes".into(), api::notes_data(d).await?);
        answers.insert("/api/papers".into(), api::papers_data(d).await?);
        answers.insert("/api/data".into(), api::data_data(d).await?);
        answers.insert("/api/overview".into(), overview);
        answers.insert("/api/trials".into(), trials);
        Ok(Report { answers, study: d.study.name.clone(), best_diff, generated_ms: postdoc_store::now_ms() })
    }
}

/// JSON that can sit inside a `<script>` element: no `<`, `>` or `&` (so no `</script>`), and
/// no line separators JavaScript would choke on, all written as escapes the parser undoes.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

impl Report {
    /// One self-contained HTML file: the dashboard's page, style and script inline, with the
    /// study's data as a JSON block. Its policy lets only that script run (by its hash).
    pub fn html(&self) -> String {
        let script = include_str!("../assets/app.js");
        let style = include_str!("../assets/app.css");
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()));
        let data = json!({
            "study": self.study, "generated_ms": self.generated_ms, "best_diff": self.best_diff, "answers": self.answers,
        });
        let data = script_safe(&serde_json::to_string(&data).expect("JSON values serialize"));
        let policy = format!(
            "default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
        );
        include_str!("../assets/index.html")
            .replace(
                "<link rel=\"stylesheet\" href=\"/app.css\">",
                &format!(
                    "<meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\">\n<style>\n{style}</style>"
                ),
            )
            .replace(
                "<script src=\"/app.js\" defer></script>",
                &format!(
                    "<script type=\"application/json\" id=\"postdoc-report\">{data}</script>\n<script>{script}</script>"
                ),
            )
    }

    /// The same report in Markdown.
    pub fn markdown(&self) -> String {
        let o = &self.answers["/api/overview"];
        let t = &self.answers["/api/trials"];
        let s = &o["summary"];
        let metric = o["objective"]["metric"].as_str().unwrap_or("score");
        let direction = o["objective"]["direction"].as_str().unwrap_or("maximize");
        let mut md = String::new();
        let _ = writeln!(md, "# Study {}: report\n", text(&self.study));
        let _ =
            writeln!(md, "Objective: {direction} {}. Trials: {} of {}.\n", text(metric), s["trials"], s["max_trials"]);

        md.push_str("## Result\n\n");
        let sigma = s["noise"]["sigma"].as_f64().unwrap_or(0.0);
        let base = s["baseline"]["score"].as_f64();
        match &s["baseline"] {
            Value::Null => md.push_str("- Baseline: not run yet\n"),
            b => {
                let _ = writeln!(
                    md,
                    "- Baseline: {} ± {} over {} seed(s) (trial {})",
                    number(base),
                    number(Some(sigma)),
                    b["runs"],
                    b["number"]
                );
            }
        }
        let best = &s["best"];
        if best.is_object() && best["specialist"] != "baseline" {
            let score = best["score"].as_f64();
            let gain = score.zip(base).map(|(x, b)| x - b);
            let times = match gain {
                Some(g) if sigma > 0.0 => format!(", {:.1}× the noise", g.abs() / sigma),
                _ => String::new(),
            };
            let _ = writeln!(
                md,
                "- Best: {} ({} vs baseline{times}): trial {} by {}: {}",
                number(score),
                signed(gain),
                best["number"],
                text(best["specialist"].as_str().unwrap_or("")),
                text(best["hypothesis"].as_str().unwrap_or(""))
            );
        } else {
            md.push_str("- Best: nothing has beaten the baseline yet\n");
        }
        let labels: Vec<String> =
            s["labels"].as_object().into_iter().flatten().map(|(l, n)| format!("{l} {n}")).collect();
        let _ = writeln!(md, "- Labels: {}", if labels.is_empty() { "none yet".into() } else { labels.join(", ") });
        let _ = writeln!(
            md,
            "- Compute: {} s; wall clock: {} s",
            number(s["compute_seconds"].as_f64()),
            number(s["active_seconds"].as_f64())
        );
        let spend: f64 =
            s["model_spend"].as_object().into_iter().flatten().filter_map(|(_, v)| v["dollars"].as_f64()).sum();
        let _ = writeln!(md, "- Model spend: ${spend:.4}\n");

        md.push_str("## What worked\n\n");
        let kept = o["kept"].as_array().cloned().unwrap_or_default();
        let kept: Vec<&Value> = kept.iter().filter(|k| k["specialist"] != "baseline").collect();
        if kept.is_empty() {
            md.push_str("No change was kept.\n\n");
        } else {
            md.push_str("| trial | specialist | score | spread of its runs | change vs its parent | hypothesis | papers |\n|---:|---|---:|---:|---:|---|---|\n");
            for k in kept {
                let papers: Vec<String> = k["papers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        text(&format!("{} ({})", p["title"].as_str().unwrap_or(""), p["id"].as_str().unwrap_or("")))
                    })
                    .collect();
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    k["number"],
                    text(k["specialist"].as_str().unwrap_or("")),
                    number(k["score"].as_f64()),
                    number(k["spread"].as_f64()),
                    signed(k["delta"].as_f64()),
                    text(k["hypothesis"].as_str().unwrap_or("")),
                    if papers.is_empty() { "-".to_string() } else { papers.join("; ") }
                );
            }
            md.push('\n');
        }
        let path: Vec<String> = t["path_to_best"].as_array().into_iter().flatten().map(|n| n.to_string()).collect();
        if !path.is_empty() {
            let _ = writeln!(md, "Path to the best: trial {}.\n", path.join(" → "));
        }
        if let Some(diff) = self.best_diff.as_deref().filter(|d| !d.trim().is_empty()) {
            md.push_str("## The best recipe's change\n\n");
            let fence = "`".repeat(longest_run(diff, '`').max(2) + 1);
            let _ = writeln!(md, "{fence}diff\n{}\n{fence}\n", diff.trim_end());
        }

        md.push_str("## Specialists\n\n| specialist | trials | keeps | wasted | improvement | per trial |\n|---|---:|---:|---:|---:|---:|\n");
        for r in self.answers["/api/specialists"]["specialists"].as_array().into_iter().flatten() {
            let wasted: u64 = r["waste"].as_object().into_iter().flatten().filter_map(|(_, n)| n.as_u64()).sum();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {wasted} | {} | {} |",
                text(r["name"].as_str().unwrap_or("")),
                r["trials"],
                r["keeps"],
                signed(r["improvement"].as_f64()),
                signed(r["improvement_per_trial"].as_f64())
            );
        }
        md.push('\n');

        md.push_str("## Failures\n\n");
        let failures = o["failures"].as_object().cloned().unwrap_or_default();
        if failures.is_empty() {
            md.push_str("No trial failed.\n\n");
        }
        for (label, examples) in &failures {
            let _ = writeln!(md, "### {label} ({})\n", s["labels"][label]);
            for e in examples.as_array().into_iter().flatten() {
                let _ = writeln!(
                    md,
                    "- trial {} by {}: {} ({})",
                    e["number"],
                    text(e["specialist"].as_str().unwrap_or("")),
                    text(e["reason"].as_str().unwrap_or("")),
                    text(e["hypothesis"].as_str().unwrap_or(""))
                );
            }
            md.push('\n');
        }
        let notes = self.answers["/api/notes"]["notes"].as_array().cloned().unwrap_or_default();
        if !notes.is_empty() {
            md.push_str("## Researcher notes\n\n");
            for n in notes {
                let _ = writeln!(md, "- {}", text(n["text"].as_str().unwrap_or("")));
            }
            md.push('\n');
        }
        let nodes = t["tree"]["number"].as_array().map_or(0, Vec::len);
        let _ = writeln!(md, "_{nodes} trials in the lineage; `postdoc show TRIAL` prints any of them._");
        md
    }
}

/// Text from the study as Markdown that renders as that text: markup characters escaped, one line.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' | '\t' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '!' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn number(x: Option<f64>) -> String {
    match x {
        Some(v) if v.abs() >= 1e5 || (v != 0.0 && v.abs() < 1e-3) => format!("{v:.3e}"),
        Some(v) => format!("{}", (v * 1e4).round() / 1e4),
        None => "–".into(),
    }
}

fn signed(x: Option<f64>) -> String {
    match x {
        Some(v) if v >= 0.0 => format!("+{}", number(Some(v))),
        other => number(other),
    }
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in s.chars() {
        run = if ch == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn study_text_cannot_become_markup() {
        assert_eq!(
            text("<img src=x onerror=alert(1)> | *b* [l](u)\nnext"),
            "&lt;img src=x onerror=alert(1)&gt; \\| \\*b\\* \\[l\\](u) next"
        );
        assert_eq!(script_safe(r#"{"h":"</script><b>&"}"#), r#"{"h":"\u003c/script\u003e\u003cb\u003e\u0026"}"#);
        let parsed: Value = serde_json::from_str(&script_safe(r#"{"h":"</script>"}"#)).unwrap();
        assert_eq!(parsed["h"], "</script>", "the escapes read back as the text");
    }

    #[test]
    fn numbers_read_as_a_person_writes_them() {
        assert_eq!(
            (number(Some(0.12345)), number(Some(1e-5)), number(None)),
            ("0.1235".into(), "1.000e-5".into(), "–".into())
        );
        assert_eq!((signed(Some(0.1)), signed(Some(-0.1))), ("+0.1".into(), "-0.1".into()));
        assert_eq!(longest_run("a``b```c", '`'), 3);
    }
}
