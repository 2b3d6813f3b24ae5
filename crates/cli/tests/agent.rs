//! An agent study through the binary: `--brain` names the model served on loopback, the key comes
//! from the environment, and nothing the researcher can read out (status, show, the transcript,
//! lineage, export, logs, the store) holds the key.

mod common;

use common::*;
use postdoc_brain::testing::{Exchange, ReplayServer, openai_turn};

const KEY_VAR: &str = "POSTDOC_CLI_TEST_KEY";
const KEY: &str = "sk-cli-test-NEVER-SHOWN-41";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_trial_reads_out_everywhere_without_the_key() {
    let server = ReplayServer::start(vec![
        Exchange::sse(
            &openai_turn("Raising the rate.", &[("set_knob", r#"{"name": "lr", "value": 0.05}"#)], (700, 20)),
            24,
        ),
        Exchange::sse(
            &openai_turn(
                "",
                &[(
                    "submit",
                    r#"{"hypothesis": "a higher rate converges in the epochs given", "expected_delta": 0.02}"#,
                )],
                (800, 30),
            ),
            24,
        ),
    ])
    .await
    .unwrap();
    let dir = example();
    let manifest = dir.path().join("postdoc.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let head = text.split("[[specialist]]").next().unwrap().replace("max_trials = 30", "max_trials = 1");
    let agent = format!(
        "[brain]\napi_key_env = \"{KEY_VAR}\"\nprice = {{ input_per_mtok = 2.0, output_per_mtok = 8.0 }}\n\n\
         [[specialist]]\nname = \"tuner\"\nstrategy = \"agent\"\nknobs_file = \"recipe.toml\"\n\
         knobs = {{ lr = {{ log_float = [1e-4, 1.0] }} }}\n"
    );
    std::fs::write(&manifest, head + &agent).unwrap();
    sh(dir.path(), "git -c user.name=t -c user.email=t@t commit -qam agent");

    let brain = format!("openai:replayed@{}/v1", server.url);
    let dir_path = dir.path().to_path_buf();
    let run = tokio::task::spawn_blocking(move || {
        postdoc(&dir_path).args(["run", "--brain", &brain]).env(KEY_VAR, KEY).output().unwrap()
    })
    .await
    .unwrap();
    let mut seen = stderr_of(&run) + &String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{seen}");
    assert!(seen.contains("trial   1") && seen.contains("tuner: a higher rate converges"), "{seen}");
    assert_eq!(server.received()[0].header("authorization"), Some(format!("Bearer {KEY}").as_str()));

    let transcript = postdoc(dir.path()).args(["show", "1", "--transcript"]).output().unwrap();
    let shown = String::from_utf8_lossy(&transcript.stdout).into_owned();
    assert!(transcript.status.success(), "{}", stderr_of(&transcript));
    assert!(shown.contains("── tool call set_knob ──") && shown.contains("lr = 0.05 (was 0.002)"), "{shown}");
    assert!(shown.contains("Raising the rate.") && shown.contains("replayed"), "{shown}");
    let status = postdoc(dir.path()).arg("status").output().unwrap();
    assert!(String::from_utf8_lossy(&status.stdout).contains("model spend"), "{}", stderr_of(&status));
    for args in
        [&["status", "--json"][..], &["show", "1", "--full"], &["lineage"], &["export"], &["export", "--format", "csv"]]
    {
        let out = postdoc(dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
        seen += &String::from_utf8_lossy(&out.stdout);
        seen += &stderr_of(&out);
    }
    seen += &shown;
    assert!(!seen.contains(KEY), "the key was printed");
    // The reports carry the transcript (and are scanned with the store below).
    for name in ["report.html", "report.md"] {
        let out = postdoc(dir.path())
            .arg("report")
            .arg("--out")
            .arg(dir.path().join(".postdoc").join(name))
            .output()
            .unwrap();
        assert!(out.status.success(), "report {name}: {}", stderr_of(&out));
    }
    let html = std::fs::read_to_string(dir.path().join(".postdoc/report.html")).unwrap();
    assert!(html.contains("set_knob") && html.contains("Raising the rate."), "the transcript is in the report");
    let mut files = vec![dir.path().join(".postdoc")];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if std::fs::read(&path).is_ok_and(|bytes| bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes())) {
            panic!("the key was written to {}", path.display());
        }
    }
}
