//! The agent's tools: what each one is (its schema, shown to the model) and what it does (on the
//! workbench, with the surface and protected paths checked before anything is written).

use crate::brief::Brief;
use postdoc_brain::ToolSpec;
use postdoc_core::knobs_file::{check_values, read_knobs, write_knobs};
use postdoc_core::surface::check_edit;
use postdoc_core::{BenchError, KnobSpec, KnobValue, KnobValues, TrialNo, Workbench};
use serde::Deserialize;
use serde_json::{Value, json};
use std::fmt::Write;

/// Longest tool result shown to the model, in characters; longer ones are cut with a note.
const MAX_RESULT: usize = 24_000;
const MAX_GREP_MATCHES: usize = 60;
const MAX_LISTED: usize = 400;

/// What a call came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    Done(String),
    /// The call was understood but cannot be done; the agent is told why.
    Refused(String),
    /// The call could not be understood (unknown tool, arguments that do not parse).
    Malformed(String),
    /// The agent submitted its proposal.
    Submit {
        hypothesis: String,
        expected_delta: Option<f64>,
        diff: String,
        cites: Vec<i64>,
    },
    /// The workbench failed: not the agent's fault.
    Broken(String),
}

/// The tools an agent is offered. With `files`, paths are limited to those files: the ones it
/// may read, and for edits the ones in its surface.
pub(crate) fn specs(brief: &Brief, files: Option<&[String]>) -> Vec<ToolSpec> {
    let path = |editable: bool| match files {
        Some(files) => {
            let named: Vec<&String> =
                files.iter().filter(|f| !brief.hidden.matches(f) && (!editable || brief.surface.matches(f))).collect();
            json!({"type": "string", "enum": named})
        }
        None => json!({"type": "string"}),
    };
    let tool = |name: &str, description: &str, parameters: Value| ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters,
    };
    let object = |properties: Value, required: &[&str]| json!({"type": "object", "properties": properties, "required": required});
    let mut tools = Vec::new();
    // The tools that make and hand in a change come first: small models lean to the first ones.
    if brief.knobs_file.is_some() && !brief.knobs.is_empty() {
        tools.push(tool(
            "set_knob",
            "Sets a knob of the recipe to a value within its range.",
            object(
                json!({"name": {"type": "string", "enum": brief.knobs.keys().collect::<Vec<_>>()}, "value": {}}),
                &["name", "value"],
            ),
        ));
    }
    tools.extend([
        tool(
            "edit_file",
            "Replaces the exact text `search` (which must occur once in the file) with `replace`. \
             With an empty `search`, creates a new file holding `replace`.",
            object(
                json!({"path": path(true), "search": {"type": "string"}, "replace": {"type": "string"}}),
                &["path", "search", "replace"],
            ),
        ),
        tool(
            "submit",
            "Submits your draft as a trial, ending this session. `hypothesis`: one line saying what the change \
             should do and why; `expected_delta`: the change in the objective you expect; `cites`: the numbers of \
             the technique cards (from search_papers) the idea comes from, if any.",
            object(
                json!({"hypothesis": {"type": "string"}, "expected_delta": {"type": "number"},
                       "cites": {"type": "array", "items": {"type": "integer"}}}),
                &["hypothesis"],
            ),
        ),
        tool(
            "preflight",
            "Checks your draft: the recipe's syntax check and a short smoke run. Returns what went wrong, if anything.",
            object(json!({}), &[]),
        ),
        tool(
            "read_file",
            "Reads a file of your draft, optionally only some lines (numbered from 1).",
            object(
                json!({"path": path(false), "from_line": {"type": "integer"}, "to_line": {"type": "integer"}}),
                &["path"],
            ),
        ),
        tool(
            "list_files",
            "Lists the recipe's files with their sizes and whether you may edit them.",
            object(json!({}), &[]),
        ),
        tool(
            "grep",
            "Searches the recipe's files for a regular expression; optionally only paths matching `path` (a prefix).",
            object(json!({"pattern": {"type": "string"}, "path": {"type": "string"}}), &["pattern"]),
        ),
        tool(
            "show_trial",
            "Shows an earlier trial: its hypothesis, knobs, label, score and change.",
            object(json!({"trial": {"type": "integer"}}), &["trial"]),
        ),
        tool(
            "diff_trials",
            "Shows the change from one trial's recipe to another's.",
            object(json!({"from": {"type": "integer"}, "to": {"type": "integer"}}), &["from", "to"]),
        ),
        tool(
            "search_papers",
            "Searches the study's paper library for a technique or a problem. Lists papers with their technique cards.",
            object(json!({"query": {"type": "string"}}), &["query"]),
        ),
        tool(
            "read_card",
            "Reads one technique card: the technique, the effect the paper claims, where it was shown, and the \
             sentences these rest on.",
            object(json!({"card": {"type": "integer"}}), &["card"]),
        ),
        tool(
            "search_datasets",
            "Searches the Hugging Face Hub for datasets: words in the name, and terms such as task:text-generation, \
             language:en, licence:mit. Lists each with its licence, tasks, size and downloads.",
            object(json!({"query": {"type": "string"}}), &["query"]),
        ),
        tool(
            "inspect_dataset",
            "Says what is in a dataset: a file of the recipe, or hub:OWNER/NAME on the Hub. Columns, post-training \
             shape, lengths, duplicates, languages and a few rows.",
            object(json!({"dataset": {"type": "string"}}), &["dataset"]),
        ),
        tool(
            "start_from",
            "Starts your draft over from another trial's recipe (your edits so far are dropped).",
            object(json!({"trial": {"type": "integer"}}), &["trial"]),
        ),
    ]);
    tools
}

/// Tools without arguments still want a JSON object, so text that is not one is caught.
#[derive(Deserialize)]
struct NoArgs {}

#[derive(Deserialize)]
struct ReadArgs {
    path: String,
    from_line: Option<usize>,
    to_line: Option<usize>,
}

#[derive(Deserialize)]
struct GrepArgs {
    pattern: String,
    path: Option<String>,
}

#[derive(Deserialize)]
struct EditArgs {
    path: String,
    search: String,
    replace: String,
}

#[derive(Deserialize)]
struct KnobArgs {
    name: String,
    value: Value,
}

#[derive(Deserialize)]
struct TrialArgs {
    trial: TrialNo,
}

#[derive(Deserialize)]
struct DiffArgs {
    from: TrialNo,
    to: TrialNo,
}

#[derive(Deserialize)]
struct SearchArgs {
    query: String,
}

#[derive(Deserialize)]
struct DatasetArgs {
    dataset: String,
}

#[derive(Deserialize)]
struct SubmitArgs {
    hypothesis: String,
    expected_delta: Option<f64>,
    #[serde(default)]
    cites: Vec<i64>,
}

#[derive(Deserialize)]
struct CardArgs {
    card: i64,
}

fn parse<T: serde::de::DeserializeOwned>(tool: &str, arguments: &str) -> Result<T, Outcome> {
    let text = if arguments.trim().is_empty() { "{}" } else { arguments };
    serde_json::from_str(text).map_err(|e| {
        Outcome::Malformed(format!(
            "the arguments of `{tool}` are not valid: {e}. They must be a JSON object as the tool's schema says."
        ))
    })
}

fn bench(e: BenchError) -> Outcome {
    match e {
        BenchError::Refused(why) => Outcome::Refused(why),
        BenchError::Broken(why) => Outcome::Broken(why),
    }
}

/// Runs one call.
pub(crate) async fn call(brief: &Brief, workbench: &dyn Workbench, tool: &str, arguments: &str) -> Outcome {
    match run(brief, workbench, tool, arguments).await {
        Ok(outcome) | Err(outcome) => outcome,
    }
}

async fn run(brief: &Brief, wb: &dyn Workbench, tool: &str, arguments: &str) -> Result<Outcome, Outcome> {
    Ok(match tool {
        "list_files" => {
            let _: NoArgs = parse(tool, arguments)?;
            let files = wb.list_files().await.map_err(bench)?;
            let mut out = String::new();
            for (path, size) in files.iter().take(MAX_LISTED) {
                let access = if brief.hidden.matches(path) {
                    "hidden"
                } else if brief.protected.matches(path) {
                    "protected"
                } else if brief.surface.matches(path) {
                    "editable"
                } else {
                    "read-only"
                };
                let _ = writeln!(out, "{path}  {size} bytes  {access}");
            }
            if files.len() > MAX_LISTED {
                let _ = writeln!(out, "… and {} more files", files.len() - MAX_LISTED);
            }
            Outcome::Done(out)
        }
        "read_file" => {
            let a: ReadArgs = parse(tool, arguments)?;
            readable(brief, &a.path)?;
            let text = wb.read_file(&a.path).await.map_err(bench)?;
            let lines: Vec<&str> = text.lines().collect();
            let from = a.from_line.unwrap_or(1).max(1);
            let to = a.to_line.unwrap_or(lines.len()).min(lines.len());
            if from > to && !lines.is_empty() {
                return Err(Outcome::Refused(format!(
                    "`{}` has {} lines; lines {from} to {to} are empty",
                    a.path,
                    lines.len()
                )));
            }
            let body = if a.from_line.is_none() && a.to_line.is_none() {
                text
            } else {
                let mut s = format!("(lines {from}-{to} of {})\n", lines.len());
                for line in &lines[from - 1..to] {
                    s.push_str(line);
                    s.push('\n');
                }
                s
            };
            Outcome::Done(cut(body, "read fewer lines with from_line and to_line"))
        }
        "grep" => {
            let a: GrepArgs = parse(tool, arguments)?;
            let re = regex::Regex::new(&a.pattern)
                .map_err(|e| Outcome::Malformed(format!("`{}` is not a valid regular expression: {e}", a.pattern)))?;
            let mut out = String::new();
            let mut found = 0;
            for (path, size) in wb.list_files().await.map_err(bench)? {
                if size > 2_000_000 || brief.hidden.matches(&path) {
                    continue;
                }
                if let Some(prefix) = &a.path
                    && !path.starts_with(prefix.trim_start_matches("./"))
                {
                    continue;
                }
                let Ok(text) = wb.read_file(&path).await else { continue }; // binary files
                for (n, line) in text.lines().enumerate() {
                    if re.is_match(line) {
                        found += 1;
                        if found <= MAX_GREP_MATCHES {
                            let _ = writeln!(out, "{path}:{}: {}", n + 1, line.trim_end());
                        }
                    }
                }
            }
            if found == 0 {
                out = "no match".into();
            } else if found > MAX_GREP_MATCHES {
                let _ = writeln!(out, "… {} more matches", found - MAX_GREP_MATCHES);
            }
            Outcome::Done(cut(out, "narrow the pattern"))
        }
        "edit_file" => {
            let a: EditArgs = parse(tool, arguments)?;
            let path = a.path.trim_start_matches("./").to_string();
            editable(brief, &path)?;
            let current = match wb.read_file(&path).await {
                Ok(text) => Some(text),
                Err(BenchError::Refused(_)) => None,
                Err(e) => return Err(bench(e)),
            };
            let new = match (&current, a.search.is_empty()) {
                (None, true) => a.replace.clone(),
                (None, false) => {
                    return Err(Outcome::Refused(format!(
                        "`{path}` does not exist; to create it, give an empty `search`"
                    )));
                }
                (Some(text), true) if !text.is_empty() => {
                    return Err(Outcome::Refused(format!(
                        "`{path}` exists: quote the text to replace in `search` (an empty `search` only creates new files)"
                    )));
                }
                (Some(_), true) => a.replace.clone(),
                (Some(text), false) => replace_once(&path, text, &a.search, &a.replace)?,
            };
            wb.write_file(&path, &new).await.map_err(bench)?;
            Outcome::Done(format!(
                "{} `{path}`: {} lines now (was {})",
                if current.is_some() { "edited" } else { "created" },
                new.lines().count(),
                current.map(|t| t.lines().count()).unwrap_or(0)
            ))
        }
        "set_knob" => {
            let a: KnobArgs = parse(tool, arguments)?;
            let Some(file) = &brief.knobs_file else {
                return Err(Outcome::Refused("this specialist has no knobs".into()));
            };
            let spec = brief.knobs.get(&a.name).ok_or_else(|| {
                Outcome::Refused(format!(
                    "`{}` is not one of your knobs ({})",
                    a.name,
                    brief.knobs.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            let value = knob_value(spec, &a.value).ok_or_else(|| {
                Outcome::Malformed(format!("{} is not a knob value (a number, a string or a boolean)", a.value))
            })?;
            let values: KnobValues = [(a.name.clone(), value.clone())].into_iter().collect();
            check_values(&values, &brief.knobs).map_err(Outcome::Refused)?;
            let text = wb.read_file(file).await.map_err(bench)?;
            let before = read_knobs(&text, [&a.name]).get(&a.name).cloned();
            if before.as_ref() == Some(&value) {
                return Err(Outcome::Refused(format!(
                    "{} is already {value}: set a different value to change the recipe",
                    a.name
                )));
            }
            let new = write_knobs(&text, &values).map_err(Outcome::Refused)?;
            wb.write_file(file, &new).await.map_err(bench)?;
            Outcome::Done(match before {
                Some(old) => format!("{} = {value} (was {old})", a.name),
                None => format!("{} = {value}", a.name),
            })
        }
        "show_trial" => {
            let a: TrialArgs = parse(tool, arguments)?;
            Outcome::Done(cut(wb.show_trial(a.trial).await.map_err(bench)?, "ask diff_trials for the change alone"))
        }
        "diff_trials" => {
            let a: DiffArgs = parse(tool, arguments)?;
            let diff = wb.diff_trials(a.from, a.to).await.map_err(bench)?;
            Outcome::Done(if diff.trim().is_empty() { "no difference".into() } else { cut(diff, "") })
        }
        "search_papers" => {
            let a: SearchArgs = parse(tool, arguments)?;
            if a.query.trim().is_empty() {
                return Err(Outcome::Malformed("`query` must say what to look for".into()));
            }
            Outcome::Done(cut(wb.search_papers(&a.query).await.map_err(bench)?, "narrow the query"))
        }
        "read_card" => {
            let a: CardArgs = parse(tool, arguments)?;
            Outcome::Done(cut(wb.read_card(a.card).await.map_err(bench)?, ""))
        }
        "search_datasets" => {
            let a: SearchArgs = parse(tool, arguments)?;
            if a.query.trim().is_empty() {
                return Err(Outcome::Malformed("`query` must say what to look for".into()));
            }
            Outcome::Done(cut(wb.search_datasets(&a.query).await.map_err(bench)?, "narrow the query"))
        }
        "inspect_dataset" => {
            let a: DatasetArgs = parse(tool, arguments)?;
            if !a.dataset.starts_with("hub:") {
                readable(brief, &a.dataset)?;
            }
            Outcome::Done(cut(wb.inspect_dataset(&a.dataset).await.map_err(bench)?, ""))
        }
        "start_from" => {
            let a: TrialArgs = parse(tool, arguments)?;
            wb.start_from(a.trial).await.map_err(bench)?;
            Outcome::Done(format!("your draft now starts from trial {}'s recipe, with no edits", a.trial))
        }
        "preflight" => {
            let _: NoArgs = parse(tool, arguments)?;
            Outcome::Done(cut(wb.preflight().await.map_err(bench)?, ""))
        }
        "submit" => {
            let a: SubmitArgs = parse(tool, arguments)?;
            let hypothesis = a.hypothesis.trim().to_string();
            if hypothesis.is_empty() {
                return Err(Outcome::Malformed("`hypothesis` must say what the change should do".into()));
            }
            let diff = wb.diff().await.map_err(bench)?;
            if diff.trim().is_empty() {
                return Err(Outcome::Refused(
                    "your draft changes nothing yet: edit a file or set a knob, then submit".into(),
                ));
            }
            // A citation must name a card that exists.
            for card in &a.cites {
                if let Err(e) = wb.read_card(*card).await {
                    return Err(match e {
                        BenchError::Refused(why) => {
                            Outcome::Refused(format!("`cites` names card {card}, which cannot be read: {why}"))
                        }
                        other => bench(other),
                    });
                }
            }
            Outcome::Submit {
                hypothesis,
                expected_delta: a.expected_delta.filter(|d| d.is_finite()),
                diff,
                cites: a.cites,
            }
        }
        other => Outcome::Malformed(format!(
            "there is no tool `{other}`; the tools are {}",
            specs(brief, None).iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
        )),
    })
}

fn readable(brief: &Brief, path: &str) -> Result<(), Outcome> {
    if brief.hidden.matches(path.trim_start_matches("./")) {
        return Err(Outcome::Refused(format!(
            "`{path}` is the held-out benchmark; specialists may not read it (training on it labels a trial contaminated)"
        )));
    }
    Ok(())
}

fn editable(brief: &Brief, path: &str) -> Result<(), Outcome> {
    check_edit(&[path.to_string()], &brief.surface, &brief.protected, &brief.specialist)
        .map_err(|v| Outcome::Refused(format!("{v}; you may change only {}", brief.surface.globs().join(", "))))
}

/// `text` with its one occurrence of `search` replaced, or why not.
fn replace_once(path: &str, text: &str, search: &str, replace: &str) -> Result<String, Outcome> {
    match text.matches(search).count() {
        1 => Ok(text.replacen(search, replace, 1)),
        0 => {
            let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
            let hint = if squash(text).contains(&squash(search)) {
                " It matches if spacing is ignored: copy the text exactly, with its indentation and line breaks."
            } else {
                " Read the file again and quote the current text."
            };
            Err(Outcome::Refused(format!("the `search` text does not occur in `{path}`.{hint}")))
        }
        n => Err(Outcome::Refused(format!(
            "the `search` text occurs {n} times in `{path}`; include more of the surrounding lines so it occurs once"
        ))),
    }
}

/// A JSON value as the knob's kind wants it: `3.0` for an integer knob is 3.
fn knob_value(spec: &KnobSpec, value: &Value) -> Option<KnobValue> {
    let v: KnobValue = serde_json::from_value(value.clone()).ok()?;
    Some(match (spec, v) {
        (KnobSpec::Int(_), KnobValue::Float(f)) if f.fract() == 0.0 && f.abs() < 9e15 => KnobValue::Int(f as i64),
        // A number sent as text by a model that quotes everything.
        (KnobSpec::Int(_), KnobValue::Text(t)) if t.trim().parse::<i64>().is_ok() => {
            KnobValue::Int(t.trim().parse().ok()?)
        }
        (KnobSpec::Float(_) | KnobSpec::LogFloat(_), KnobValue::Text(t)) if t.trim().parse::<f64>().is_ok() => {
            KnobValue::Float(t.trim().parse().ok()?)
        }
        (_, v) => v,
    })
}

fn cut(mut text: String, advice: &str) -> String {
    if text.chars().count() > MAX_RESULT {
        let end = text.char_indices().nth(MAX_RESULT).map(|(i, _)| i).unwrap_or(text.len());
        text.truncate(end);
        let _ =
            write!(text, "\n… (cut at {MAX_RESULT} characters{}{advice})", if advice.is_empty() { "" } else { "; " });
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_once_explains_each_failure() {
        let text = "lr = 0.1\nsteps = 10\nlr = 0.1\n";
        assert!(matches!(replace_once("a", text, "steps = 10", "steps = 20"), Ok(t) if t.contains("steps = 20")));
        assert!(matches!(replace_once("a", text, "lr = 0.1", "x"), Err(Outcome::Refused(m)) if m.contains("2 times")));
        assert!(
            matches!(replace_once("a", text, "steps  =  10", "x"), Err(Outcome::Refused(m)) if m.contains("spacing"))
        );
        assert!(
            matches!(replace_once("a", text, "warmup", "x"), Err(Outcome::Refused(m)) if m.contains("Read the file"))
        );
    }

    #[test]
    fn knob_values_take_the_kind_of_their_knob() {
        assert_eq!(knob_value(&KnobSpec::Int([0, 10]), &json!(3.0)), Some(KnobValue::Int(3)));
        assert_eq!(knob_value(&KnobSpec::Int([0, 10]), &json!("4")), Some(KnobValue::Int(4)));
        assert_eq!(knob_value(&KnobSpec::LogFloat([1e-4, 1.0]), &json!("0.01")), Some(KnobValue::Float(0.01)));
        assert_eq!(knob_value(&KnobSpec::Float([0.0, 1.0]), &json!([1])), None);
    }
}
