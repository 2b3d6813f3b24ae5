//! The dashboard in a real browser: headless Chromium driven over WebDriver (Debian's `chromium`
//! and `chromium-driver`), against `postdoc serve` and `postdoc run --serve`. Each page the test
//! looks at is saved as a screenshot under `target/tmp/screenshots/` for a person to look at.
//! Without Chromium the tests say so and pass, except under CI, where it is required.

mod common;

use base64::Engine;
use postdoc_core::{BASELINE_SPECIALIST, Edit, KnobValue, Label, Proposal, Verdict};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n))).find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A process group killed when dropped.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: signals the process group this test started; nothing else shares it.
        unsafe { libc::killpg(self.0.id() as i32, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn spawn_group(cmd: &mut Command) -> Group {
    Group(cmd.process_group(0).spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")))
}

/// One headless Chromium session through chromedriver.
struct Browser {
    http: reqwest::Client,
    session: String,
    shots: PathBuf,
    _driver: Group,
}

impl Browser {
    /// `None` (after saying why) when Chromium is not installed, outside CI.
    async fn start() -> Option<Browser> {
        let chromium = find_program(&["chromium", "chromium-browser"]);
        let driver = find_program(&["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs Chromium and chromedriver (Debian: chromium chromium-driver) for the browser tests"
            );
            eprintln!("skipping: no chromium/chromedriver on PATH (apt-get install chromium chromium-driver)");
            return None;
        };
        let port = free_port();
        let driver =
            spawn_group(Command::new(driver).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()));
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking"],
        }}}});
        let r: Value = http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = r["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {r}")).to_string();
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Some(Browser { http, session: format!("{base}/session/{session}"), shots, _driver: driver })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let mut request = self.http.request(method, &url);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let r: Value = request.send().await.unwrap().json().await.unwrap();
        if let Some(e) = r["value"].get("error") {
            panic!("webdriver {path}: {e}: {}", r["value"]["message"]);
        }
        r["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    async fn script(&self, js: &str, args: Value) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": js, "args": args}))).await
    }

    /// Waits until `js` (a function body over `arguments`) returns something truthy, and returns it.
    async fn until(&self, what: &str, js: &str, args: Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.script(js, args.clone()).await;
            if !(v.is_null() || v == json!(false) || v == json!("")) {
                return v;
            }
            if Instant::now() > deadline {
                self.screenshot(&format!("timeout-{}", what.replace(' ', "-"))).await;
                let text = self.script("return document.body.innerText", json!([])).await;
                panic!("timed out waiting for {what}; the page says:\n{}", text.as_str().unwrap_or(""));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn click(&self, css: &str) {
        let e =
            self.call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
        let id = e[ELEMENT].as_str().unwrap().to_string();
        self.call(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({}))).await;
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    async fn quit(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

/// Reads `postdoc`'s standard error until it prints the dashboard's address.
fn dashboard_url(child: &mut Child) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line =
            rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("the dashboard's address");
        if let Some(url) = line.trim().strip_prefix("dashboard: ") {
            let url = url.split_whitespace().next().unwrap().to_string();
            // The rest of the output still has to be read, or postdoc would block on a full pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return url;
        }
    }
}

fn postdoc_command(dir: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("postdoc"));
    cmd.arg("-C").arg(dir).env_remove("POSTDOC_STORE").env("NO_COLOR", "1");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_study_shows_new_trials_live_and_takes_approvals() {
    let Some(browser) = Browser::start().await else { return };
    let dir = common::example();
    let mut child = postdoc_command(dir.path())
        .args(["run", "--serve", "--port", "0", "--approve", "each", "--max-trials", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let url = dashboard_url(&mut child);
    let run = Group(child);

    browser.goto(&url).await;
    browser.until("the overview", "return document.querySelector('.cards') !== null", json!([])).await;
    browser
        .until(
            "the study's name in the header",
            "return document.getElementById('study-name').textContent === 'tiny-logreg'",
            json!([]),
        )
        .await;
    // Marks this page load: a reload would lose it.
    browser.script("window.__loaded_once = true", json!([])).await;
    browser
        .until("the baseline's score", "return /±/.test(document.querySelector('.cards').innerText)", json!([]))
        .await;
    browser.screenshot("overview").await;

    // The first proposal waits for the researcher: approve it from the browser.
    browser.goto(&format!("{url}#/oversight")).await;
    browser.until("a waiting proposal", "return document.querySelector('[data-waiting]') !== null", json!([])).await;
    browser.screenshot("oversight").await;
    let waiting = browser.script("return document.querySelector('[data-waiting]').dataset.waiting", json!([])).await;
    let waiting = waiting.as_str().unwrap().to_string();
    browser.click("[data-waiting] button.primary").await;
    browser
        .until(
            "the approval",
            "return document.querySelector('[data-waiting=\"' + arguments[0] + '\"]') === null",
            json!([waiting]),
        )
        .await;

    // Back to the overview by its link (no reload): the approved trial and then its label appear
    // there as it runs and finishes, pushed by the event stream.
    browser.click("header nav a[href='#/']").await;
    browser
        .until(
            "the approved trial's verdict on the overview",
            "return [...document.querySelectorAll('main a')].some(a => a.getAttribute('href') === '#/trial/' + arguments[0])
                && !document.querySelector('main').innerText.includes('No candidate has finished yet')",
            json!([waiting]),
        )
        .await;
    assert_eq!(browser.script("return window.__loaded_once === true", json!([])).await, json!(true), "no reload");
    browser.screenshot("overview-with-trial").await;

    browser.click(&format!("main a[href='#/trial/{waiting}']")).await;
    let title = browser
        .until("the trial page", "const h = document.querySelector('h1'); return h && h.innerText.includes('Trial #' + arguments[0]) && h.innerText", json!([waiting]))
        .await;
    assert!(title.as_str().unwrap().contains(&format!("Trial #{waiting}")));
    browser.until("its knobs", "return /Knobs/.test(document.querySelector('main').innerText)", json!([])).await;
    browser.screenshot("trial").await;

    browser.goto(&format!("{url}#/tree")).await;
    let nodes = browser
        .until(
            "the lineage tree",
            "const n = document.querySelectorAll('circle[data-trial]').length; return n >= 2 && n",
            json!([]),
        )
        .await;
    assert!(nodes.as_u64().unwrap() >= 2);
    browser.screenshot("lineage").await;
    browser.quit().await;
    drop(run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_specialist_wrote_never_runs_in_the_page() {
    let Some(browser) = Browser::start().await else { return };
    // A study whose trials and notes hold markup, written straight into the recipe's store.
    let dir = common::example();
    let hostile = r#"<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"><b>bold</b>"#;
    let store = postdoc_store::Store::open(&format!("sqlite://{}", dir.path().join(".postdoc/lineage.db").display()))
        .await
        .unwrap();
    let study = store
        .create_study(&postdoc_store::StudyRecord {
            id: 0,
            name: "tiny-logreg".into(),
            recipe: dir.path().display().to_string(),
            base_commit: "0".into(),
            manifest: std::fs::read_to_string(dir.path().join("postdoc.toml")).unwrap(),
            comparability: "{}".into(),
            protected_hash: "sha256:0".into(),
            created_ms: postdoc_store::now_ms(),
        })
        .await
        .unwrap();
    let proposal = |specialist: &str, hypothesis: &str| Proposal {
        specialist: specialist.into(),
        hypothesis: hypothesis.into(),
        expected_delta: None,
        parent: None,
        edit: Edit::Knobs { values: [("lr".to_string(), KnobValue::Float(0.1))].into() },
        cites: Vec::new(),
    };
    store.propose(study.id, &proposal(BASELINE_SPECIALIST, "baseline"), None, None).await.unwrap();
    store.start(study.id, 0, "0", "").await.unwrap();
    store.finish(study.id, 0, &Verdict { label: Label::Keep, reason: "baseline".into(), excerpt: None }).await.unwrap();
    store.propose(study.id, &proposal("optimizer", hostile), Some(0), None).await.unwrap();
    store.start(study.id, 1, "1", &format!("+{hostile}\n")).await.unwrap();
    store
        .finish(study.id, 1, &Verdict { label: Label::Crash, reason: hostile.into(), excerpt: Some(hostile.into()) })
        .await
        .unwrap();
    let waiting = store.propose(study.id, &proposal("optimizer", hostile), Some(0), None).await.unwrap();
    store.hold(study.id, waiting).await.unwrap();
    store.add_note(study.id, hostile).await.unwrap();
    // A paper, a card a trial cites, and a dataset version, all with markup in their text.
    let paper = postdoc_core::literature::Paper {
        id: "arxiv:2106.09685".into(),
        title: hostile.into(),
        abstract_text: Some(hostile.into()),
        source: "arxiv".into(),
        ..Default::default()
    };
    store.save_paper(&paper).await.unwrap();
    let card = postdoc_core::literature::Card {
        id: 0,
        paper: paper.id.clone(),
        technique: hostile.into(),
        effect: Some(hostile.into()),
        setting: None,
        part: "optimizer".into(),
        section: "abstract".into(),
        evidence: Default::default(),
        method: "extractive".into(),
    };
    let cards = store.save_cards(&paper.id, "extractive", &[card]).await.unwrap();
    let citing = Proposal { cites: vec![cards[0].id], ..proposal("optimizer", "cites a paper") };
    let cites = store.propose(study.id, &citing, Some(0), None).await.unwrap();
    let version = postdoc_store::DatasetVersion {
        version: "cd".repeat(32),
        rows: 3,
        bytes: 100,
        format: "jsonl".into(),
        shape: None,
        source: hostile.into(),
        licence: Some(hostile.into()),
        derived_from: None,
        transform: None,
        created_ms: postdoc_store::now_ms(),
    };
    store.record_dataset_use(study.id, Some(cites), Some(0), &version, "training", hostile).await.unwrap();
    store.close().await;

    let port = free_port();
    let mut child = postdoc_command(dir.path())
        .args(["serve", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _serve = Group(child);
    let url = line.trim().strip_prefix("dashboard: ").unwrap().split_whitespace().next().unwrap().to_string();
    assert_eq!(url, format!("http://127.0.0.1:{port}/"));

    let citing_page = format!("#/trial/{cites}");
    for (page, shot) in [
        ("#/", "hostile-overview"),
        ("#/trial/1", "hostile-trial"),
        ("#/oversight", "hostile-oversight"),
        ("#/tree", "hostile-tree"),
        ("#/papers", "hostile-papers"),
        ("#/data", "hostile-data"),
        (citing_page.as_str(), "hostile-citing-trial"),
    ] {
        browser.goto(&format!("{url}{page}")).await;
        browser.until(page, "return document.querySelector('main h1') !== null", json!([])).await;
        browser.screenshot(shot).await;
        let found = browser
            .script(
                "return { pwned: window.pwned === undefined ? null : window.pwned,
                          images: document.querySelectorAll('main img').length,
                          bold: document.querySelectorAll('main b').length,
                          scripts: document.querySelectorAll('main script').length,
                          shown: document.querySelector('main').innerText.includes('<script>window.pwned = 1</script>'),
                          stray: [...document.querySelector('main').childNodes].some(n => n.nodeType === 3 && n.textContent === 'null'),
                          coloured: [...document.querySelectorAll('main .label')].every(l => getComputedStyle(l).backgroundColor !== 'rgba(0, 0, 0, 0)') }",
                json!([]),
            )
            .await;
        assert_eq!(found["pwned"], Value::Null, "{page}: a script from the study ran");
        assert_eq!(found["stray"], json!(false), "{page}: an absent part was drawn as `null`");
        assert_eq!(
            found["coloured"],
            json!(true),
            "{page}: label colours were refused (style attributes break the policy)"
        );
        assert_eq!(
            (found["images"].as_u64(), found["scripts"].as_u64()),
            (Some(0), Some(0)),
            "{page}: markup was parsed"
        );
        if page != "#/tree" {
            assert_eq!(found["shown"], json!(true), "{page}: the text is shown as written");
        }
        // The specialists' <b> never becomes markup; the page's own bold (the specialist's
        // name in the waiting list) is allowed where it is the page's.
        let hostile_bold = browser
            .script("return [...document.querySelectorAll('main b')].some(b => b.textContent === 'bold')", json!([]))
            .await;
        assert_eq!(hostile_bold, json!(false), "{page}");
    }
    browser.quit().await;
}
