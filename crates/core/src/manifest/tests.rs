use super::*;

const GOOD: &str = r#"
[study]
name = "tiny"
objective = { metric = "accuracy", direction = "maximize" }
budget = { max_trials = 20, wall_clock = "1h", compute_seconds = 900 }
parallel = 2

[setup]
command = "true"

[run]
command = "python3 train.py"
budget = { seconds = 90, memory = "4GiB" }

[evaluate]
command = "python3 eval.py"
budget = { seconds = 30 }
protected = ["eval.py", "benchmark/**"]
gates = ["accuracy >= 0.05"]
artifact_max_bytes = 8_000_000

[noise]
baseline_repeats = 3
confirm_seeds = 2

[[specialist]]
name = "optimizer"
strategy = "random"
knobs_file = "recipe.toml"
knobs = { lr = { log_float = [1e-4, 1e-1] }, warmup = { int = [0, 500] }, schedule = { choice = ["cosine", "linear"] } }
"#;

/// Replaces the first occurrence of `from` in the good manifest and checks the one-line error.
fn check(from: &str, to: &str, expected: &str) {
    assert!(GOOD.contains(from), "fixture lacks {from:?}");
    let text = GOOD.replacen(from, to, 1);
    let err = Manifest::parse(&text, "postdoc.toml").expect_err("manifest should be rejected");
    assert_eq!(err.to_string(), expected);
}

#[test]
fn good_manifest_parses() {
    let m = Manifest::parse(GOOD, "postdoc.toml").unwrap();
    assert_eq!(m.study.name, "tiny");
    assert_eq!(m.study.objective.direction, Direction::Maximize);
    assert_eq!(m.study.budget.max_trials, 20);
    assert_eq!(m.study.budget.wall_clock, Some(Seconds(3600.0)));
    assert_eq!(m.run.budget.memory, Some(Bytes(4 << 30)));
    assert_eq!(m.evaluate.gates[0].to_string(), "accuracy >= 0.05");
    assert_eq!(m.evaluate.artifact_max_bytes, Some(Bytes(8_000_000)));
    assert_eq!(m.specialists[0].knobs.len(), 3);
    assert_eq!(m.specialists[0].knobs["warmup"], KnobSpec::Int([0, 500]));
    assert_eq!(m.noise.confidence, 0.95);
}

#[test]
fn defaults_apply_when_sections_are_left_out() {
    let text = GOOD
        .replace("[noise]\nbaseline_repeats = 3\nconfirm_seeds = 2\n", "")
        .replace("budget = { max_trials = 20, wall_clock = \"1h\", compute_seconds = 900 }\nparallel = 2\n", "");
    let m = Manifest::parse(&text, "postdoc.toml").unwrap();
    assert_eq!(m.noise, NoiseSpec::default());
    assert_eq!(m.study.budget.max_trials, DEFAULT_MAX_TRIALS);
    assert_eq!(m.study.parallel, 1);
    let m = Manifest::parse(&GOOD.replace("strategy = \"random\"\n", ""), "postdoc.toml").unwrap();
    assert_eq!(m.specialists[0].strategy, Strategy::Tpe, "the default strategy learns from the lineage");
}

#[test]
fn errors_name_file_line_and_key() {
    check(
        "parallel = 2",
        "paralel = 2",
        "postdoc.toml:6:1: study.paralel: unknown field `paralel`, expected one of `name`, `objective`, `budget`, `parallel`, `seed`",
    );
    check("parallel = 2", "parallel = 0", "postdoc.toml:6:12: study.parallel: parallel must be at least 1");
    check(
        "seconds = 90,",
        "seconds = \"soon\",",
        "postdoc.toml:13:22: run.budget.seconds: `soon` is not a duration like \"90s\", \"15m\" or \"1h30m\"",
    );
    check(
        "memory = \"4GiB\"",
        "memory = \"4 parsecs\"",
        "postdoc.toml:13:35: run.budget.memory: `4 parsecs` has an unknown unit `parsecs` (use B, KB, MB, GB, KiB, MiB, GiB)",
    );
    check(
        "\"accuracy >= 0.05\"",
        "\"accuracy => 0.05\"",
        "postdoc.toml:19:10: evaluate.gates[0]: gate `accuracy => 0.05` is not of the form `metric >= number` (operators: >= > <= < == !=)",
    );
    check(
        "direction = \"maximize\"",
        "direction = \"up\"",
        "postdoc.toml:4:48: study.objective.direction: unknown variant `up`, expected `minimize` or `maximize`",
    );
    check(
        "log_float = [1e-4, 1e-1]",
        "log_float = [0.0, 1e-1]",
        "postdoc.toml:30:11: specialist[0].knobs.lr: log_float range [0, 0.1] needs 0 < low < high",
    );
    check(
        "strategy = \"random\"",
        "strategy = \"bayes\"",
        "postdoc.toml:28:12: specialist[0].strategy: unknown variant `bayes`, expected one of `tpe`, `random`, `agent`",
    );
    check(
        "knobs_file = \"recipe.toml\"",
        "knobs_file = \"eval.py\"",
        "postdoc.toml:29:14: specialist[0].knobs_file: `eval.py` is protected: a specialist may not write it",
    );
    check(
        "name = \"tiny\"",
        "name = \"../x\"",
        "postdoc.toml:3:8: study.name: `../x` is not a valid name: use letters, digits, `-`, `_` and `.`, not leading `.` or `-`",
    );
    check(
        "protected = [\"eval.py\", \"benchmark/**\"]",
        "protected = []",
        "postdoc.toml:18:13: evaluate.protected: list the evaluator's files (and its data): the evaluator runs only from a pristine copy of them",
    );
    check("[run]\ncommand = \"python3 train.py\"\n", "[run]\n", "postdoc.toml:11:1: run: missing field `command`");
}

#[test]
fn the_contamination_rule_reads_with_defaults_and_checks_its_paths() {
    let with =
        |rule: &str| GOOD.replace("artifact_max_bytes = 8_000_000", &format!("artifact_max_bytes = 8_000_000\n{rule}"));
    let m = Manifest::parse(&with(r#"contamination = { benchmark = ["benchmark/problems.jsonl"] }"#), "p").unwrap();
    let c = m.evaluate.contamination.unwrap();
    assert_eq!(c.benchmark, vec!["benchmark/problems.jsonl"]);
    assert_eq!((c.train_data.as_str(), c.ngram, c.min_chars, c.max_overlap), ("train_data.jsonl", 13, 8, 0.01));
    assert!(Manifest::parse(GOOD, "p").unwrap().evaluate.contamination.is_none());
    let err = |rule: &str| Manifest::parse(&with(rule), "postdoc.toml").unwrap_err().to_string();
    assert_eq!(
        err(r#"contamination = { benchmark = ["data/test.jsonl"] }"#),
        "postdoc.toml:21:32: evaluate.contamination.benchmark[0]: `data/test.jsonl` is not among evaluate.protected: the benchmark must be protected"
    );
    assert_eq!(
        err(r#"contamination = { benchmark = ["benchmark/a.jsonl"], train_data = "../x.jsonl" }"#),
        "postdoc.toml:21:67: evaluate.contamination.train_data: must be a path inside $POSTDOC_OUT"
    );
    assert!(err(r#"contamination = { benchmark = ["benchmark/a.jsonl"], max_overlap = 1.0 }"#).contains("max_overlap"));
    assert!(err(r#"contamination = { benchmark = [] }"#).contains("name the protected files"));
    assert!(err(r#"contamination = { benchmark = ["benchmark/a"], ngrams = 3 }"#).contains("unknown field `ngrams`"));
}

#[test]
fn early_stopping_reads_with_defaults_and_checks_its_rungs() {
    let with = |section: &str| format!("{GOOD}\n[early_stop]\n{section}\n");
    let m = Manifest::parse(&with("metric = \"dev_loss\"\ndirection = \"minimize\"\nrungs = [100, 300]"), "p").unwrap();
    let e = m.early_stop.unwrap();
    assert_eq!(
        (e.metric.as_str(), e.direction, e.rungs.clone(), e.min_runs),
        ("dev_loss", Direction::Minimize, vec![100, 300], 4)
    );
    assert!((e.keep - 1.0 / 3.0).abs() < 1e-12);
    let m = Manifest::parse(&with("metric = \"dev_acc\"\nrungs = [10]"), "p").unwrap();
    assert_eq!(m.early_stop.unwrap().direction, Direction::Maximize, "the objective's direction by default");
    let err = |section: &str| Manifest::parse(&with(section), "postdoc.toml").unwrap_err().to_string();
    assert_eq!(
        err("metric = \"a\"\nrungs = [300, 100]"),
        "postdoc.toml:34:9: early_stop.rungs: rungs are positive steps in increasing order, at least one"
    );
    assert!(err("metric = \"a\"\nrungs = [1]\nkeep = 1.5").contains("early_stop.keep"));
    assert!(err("metric = \"a\"\nrungs = [1]\nmin_runs = 1").contains("early_stop.min_runs"));
    assert!(err("metric = \"a\"\nrung = [1]").contains("unknown field `rung`"));
}

#[test]
fn syntax_errors_point_at_the_line() {
    let err = Manifest::parse("[study]\nname = \"x\"\nobjective = {\n", "recipe/postdoc.toml").unwrap_err();
    assert_eq!(err.file, "recipe/postdoc.toml");
    assert_eq!(err.line, 3);
    assert!(err.key.is_empty());
}

#[test]
fn each_knob_has_one_owner() {
    let second =
        "\n[[specialist]]\nname = \"schedule\"\nknobs_file = \"recipe.toml\"\nknobs = { warmup = { int = [0, 10] } }\n";
    let err = Manifest::parse(&format!("{GOOD}{second}"), "postdoc.toml").unwrap_err().to_string();
    assert_eq!(
        err,
        "postdoc.toml:35:11: specialist[1].knobs.warmup: knob `warmup` in recipe.toml already belongs to specialist `optimizer`: each knob has one owner"
    );
    let elsewhere = second.replace("recipe.toml", "schedule.toml");
    assert!(
        Manifest::parse(&format!("{GOOD}{elsewhere}"), "postdoc.toml").is_ok(),
        "the same name in another file is another knob"
    );
}

#[test]
fn a_missing_specialist_is_explained() {
    let text = GOOD.split("[[specialist]]").next().unwrap();
    let err = Manifest::parse(text, "postdoc.toml").unwrap_err();
    assert!(err.message.contains("no [[specialist]] is declared"), "{err}");
}

#[test]
fn comparability_ignores_budgets() {
    let a = Manifest::parse(GOOD, "p").unwrap();
    let b = Manifest::parse(&GOOD.replace("max_trials = 20", "max_trials = 99"), "p").unwrap();
    let c = Manifest::parse(&GOOD.replace("python3 eval.py", "python3 eval2.py"), "p").unwrap();
    assert_eq!(a.comparability_key(), b.comparability_key());
    assert_ne!(a.comparability_key(), c.comparability_key());
}

#[test]
fn agents_take_the_study_brain_with_their_own_fields_over_it() {
    let agent = r#"
[brain]
provider = "openai"
model = "gpt-4o-mini"
price = { input_per_mtok = 0.15, output_per_mtok = 0.6 }
max_turns = 20

[[specialist]]
name = "architect"
strategy = "agent"
role = "Improve the model's architecture."
surface = ["model.py"]
brain = { provider = "anthropic", model = "claude-sonnet-4-5", api_key_env = "TEAM_ANTHROPIC_KEY" }

[[specialist]]
name = "coder"
strategy = "agent"
surface = ["train.py"]
"#;
    let text = GOOD.replace("budget = { max_trials = 20,", "budget = { max_dollars = 2.5, max_trials = 20,") + agent;
    let m = Manifest::parse(&text, "postdoc.toml").unwrap();
    assert_eq!(m.study.budget.max_dollars, Some(2.5));
    let architect = m.specialist("architect").unwrap();
    let brain = architect.brain.as_ref().unwrap();
    assert_eq!(brain.provider, Some(Provider::Anthropic));
    assert_eq!(brain.model.as_deref(), Some("claude-sonnet-4-5"));
    assert_eq!(brain.api_key_env.as_deref(), Some("TEAM_ANTHROPIC_KEY"));
    assert_eq!(brain.max_turns, Some(20), "unset fields come from [brain]");
    assert_eq!(architect.role.as_deref(), Some("Improve the model's architecture."));
    let coder = m.specialist("coder").unwrap().brain.clone().unwrap();
    assert_eq!((coder.provider, coder.model.as_deref()), (Some(Provider::Openai), Some("gpt-4o-mini")));
    assert_eq!(coder.price.unwrap().output_per_mtok, 0.6);
    assert!(m.specialist("optimizer").unwrap().brain.is_none());

    let err = |text: &str| Manifest::parse(text, "postdoc.toml").unwrap_err().to_string();
    let bare =
        GOOD.to_string() + "\n[[specialist]]\nname = \"coder\"\nstrategy = \"agent\"\nsurface = [\"train.py\"]\n";
    let waiting = Manifest::parse(&bare, "postdoc.toml").unwrap();
    assert_eq!(waiting.specialist("coder").unwrap().brain, None, "an agent with no model named waits for --brain");
    let leaked = text.replace("api_key_env = \"TEAM_ANTHROPIC_KEY\"", "api_key_env = \"sk-ant-123secret\"");
    let message = err(&leaked);
    assert!(message.contains("specialist[1].brain.api_key_env: must name an environment variable"), "{message}");
    assert!(!message.contains("123secret"), "the error must not echo what may be a key: {message}");
    assert_eq!(
        err(&text.replace("model = \"gpt-4o-mini\"\n", "")),
        "postdoc.toml:32:2: brain: name the openai model the specialist talks to"
    );
    assert!(
        err(&text
            .replace("role = \"Improve", "knobs_file = \"r.toml\"\nrole = \"Improve")
            .replace("strategy = \"agent\"\nknobs_file", "strategy = \"tpe\"\nknobs_file"))
        .contains("searches knobs")
    );
    assert!(
        err(&text.replace("strategy = \"random\"", "strategy = \"random\"\nrole = \"x\""))
            .contains("only agent specialists")
    );
    assert!(
        err(&text.replace("max_dollars = 2.5", "max_dollars = -1")).contains("study.budget.max_dollars: a positive")
    );
}

#[test]
fn a_local_brain_needs_no_url_no_key_and_may_name_no_model() {
    let agent = r#"
[brain]
provider = "openai"
model = "gpt-4o-mini"
base_url = "http://127.0.0.1:8000/v1"
price = { input_per_mtok = 0.15, output_per_mtok = 0.6 }
max_turns = 8

[[specialist]]
name = "coder"
strategy = "agent"
surface = ["train.py"]
brain = { provider = "local" }
"#;
    let m = Manifest::parse(&(GOOD.to_string() + agent), "postdoc.toml").unwrap();
    let brain = m.specialist("coder").unwrap().brain.clone().unwrap();
    assert_eq!(brain.provider, Some(Provider::Local));
    assert_eq!(brain.model, None, "the openai model is not a local file");
    assert_eq!((brain.base_url, brain.price), (None, None), "another provider's URL and prices do not carry over");
    assert_eq!(brain.max_turns, Some(8), "limits do carry over");

    let err = |text: &str| Manifest::parse(&(GOOD.to_string() + text), "postdoc.toml").unwrap_err().to_string();
    let local = "\n[brain]\nprovider = \"local\"\n\n[[specialist]]\nname = \"coder\"\nstrategy = \"agent\"\nsurface = [\"train.py\"]\n";
    assert!(Manifest::parse(&(GOOD.to_string() + local), "p").is_ok());
    let with = |line: &str| local.replace("provider = \"local\"\n", &format!("provider = \"local\"\n{line}\n"));
    assert!(err(&with("base_url = \"http://x\"")).contains("brain.base_url: a local model runs in-process"));
    assert!(err(&with("api_key_env = \"KEY\"")).contains("brain.api_key_env: a local model needs no key"));
    assert!(err(&with("model = \" \"")).contains("brain.model: name the GGUF file"));

    // The provider may come from --brain; what the manifest does say is still checked.
    let later = local.replace("provider = \"local\"", "api_key_env = \"TEAM_KEY\"");
    let m = Manifest::parse(&(GOOD.to_string() + &later), "p").unwrap();
    let brain = m.specialist("coder").unwrap().brain.clone().unwrap();
    assert_eq!((brain.provider, brain.api_key_env.as_deref()), (None, Some("TEAM_KEY")));
    assert!(err(&later.replace("TEAM_KEY", "sk-123")).contains("brain.api_key_env: must name an environment variable"));
    let given = BrainSpec { provider: Some(Provider::Openai), model: Some("m".into()), ..BrainSpec::default() };
    assert_eq!(given.over(&brain).api_key_env.as_deref(), Some("TEAM_KEY"), "a provider named later keeps the key");
}

#[test]
fn the_names_of_postdocs_own_trials_are_reserved() {
    for reserved in ["baseline", "opening"] {
        check(
            "name = \"optimizer\"",
            &format!("name = \"{reserved}\""),
            &format!(
                "postdoc.toml:27:8: specialist[0].name: `{reserved}` is the name postdoc gives its own trials of that kind: choose another"
            ),
        );
    }
}
