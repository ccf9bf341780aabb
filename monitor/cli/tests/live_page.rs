//! The live page of `htsr-watch DIR --serve ADDR` in a real browser (headless Chromium): it loads without a
//! console error, subscribes to the daemon's events, and redraws itself when the daemon stores a new checkpoint,
//! without a reload. A daemon that serves other machines (`--serve-allow-remote`) answers only with its token,
//! which the page takes from its URL (`?token=`) and passes on to its event stream and its refreshes.

mod chromium;
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A limit that only catches hangs: the page refreshes within a second of the event.
const HANG: Duration = Duration::from_secs(120);

/// The address the daemon logged for its page ("serve: http://ADDR/ ...").
fn served_addr(daemon: &mut Daemon) -> String {
    daemon.wait_for("serve: http://", 1, HANG);
    let log = daemon.log_text();
    let line = log.lines().find(|l| l.contains("serve: http://")).unwrap();
    let after = &line[line.find("http://").unwrap() + "http://".len()..];
    after[..after.find('/').unwrap()].to_string()
}

/// Evaluates `expression` until it returns true, failing with the page's text and any console problem.
fn wait_until_true(browser: &mut chromium::Browser, session: &str, what: &str, expression: &str) {
    let deadline = Instant::now() + HANG;
    loop {
        let (v, problems) = browser.evaluate(session, expression);
        assert!(
            problems.is_empty(),
            "{what}: the page reported {problems:#?}"
        );
        if v == Value::Bool(true) {
            return;
        }
        if Instant::now() > deadline {
            let (text, _) = browser.evaluate(session, "document.body.innerText");
            panic!("{what}: not within {HANG:?}; the page says:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_step(dir: &Path, step: u64) {
    write_checkpoint(&dir.join("run"), &step_name(step), &Spec::seed(step));
}

/// Loads `url`, checks it is the live report of the run at `first_step`, then writes `next_step` and waits for
/// the page to redraw itself with it.
fn the_page_follows_the_daemon(dir: &Path, url: &str, first_step: u64, next_step: u64) {
    let mut browser = chromium::Browser::launch();
    let page = browser.load(url, "document.title");
    assert!(page.problems.is_empty(), "{url}: {:#?}", page.problems);
    assert_eq!(page.facts, Value::from("htsr: live"), "{url}");
    let session = page.session;
    wait_until_true(
        &mut browser,
        &session,
        "the event stream connects",
        "document.documentElement.dataset.htsrLive === '1'",
    );
    wait_until_true(
        &mut browser,
        &session,
        "the first checkpoint is on the page",
        &format!("document.body.innerText.includes('last step {first_step},')"),
    );
    write_step(dir, next_step);
    wait_until_true(
        &mut browser,
        &session,
        "the page redraws with the new checkpoint",
        &format!(
            "Number(document.documentElement.dataset.htsrRefreshed || 0) >= 1 && \
             document.body.innerText.includes('last step {next_step},')"
        ),
    );
    // Redrawn in place: the same document, still listening, every chart of the new report there.
    let (charts, problems) = browser.evaluate(&session, "document.querySelectorAll('svg').length");
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(charts.as_u64().unwrap() >= 3, "{charts}");
}

#[test]
#[ignore = "needs chromium from bash scripts/setup --test; scripts/test runs it"]
fn the_live_page_redraws_when_the_daemon_stores_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watched");
    write_step(&dir, 100);
    let mut daemon = Daemon::start(&dir, &tmp.path().join("log"), &["--serve", "127.0.0.1:0"]);
    daemon.wait_for("stored run=run step=100", 1, HANG);
    let addr = served_addr(&mut daemon);
    the_page_follows_the_daemon(&dir, &format!("http://{addr}/"), 100, 200);
}

#[test]
#[ignore = "needs chromium from bash scripts/setup --test; scripts/test runs it"]
fn a_daemon_serving_other_machines_shows_its_page_only_with_the_token_and_the_page_passes_it_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watched");
    write_step(&dir, 100);
    let mut daemon = Daemon::start(
        &dir,
        &tmp.path().join("log"),
        &["--serve", "127.0.0.1:0", "--serve-allow-remote"],
    );
    daemon.wait_for("stored run=run step=100", 1, HANG);
    let addr = served_addr(&mut daemon);
    let token = std::fs::read_to_string(dir.join(".htsr").join("serve.token")).unwrap();
    let token = token.trim();

    // Without the token: refused, and nothing of the store on the page.
    let mut browser = chromium::Browser::launch();
    let refused = browser.load(&format!("http://{addr}/"), "document.body.innerText");
    let text = refused.facts.as_str().unwrap_or_default().to_string();
    assert!(!text.contains("last step"), "{text}");
    assert!(
        refused.problems.iter().any(|p| p.contains("401")),
        "a refused page is a 401 in the console: {:#?}",
        refused.problems
    );
    drop(browser);

    the_page_follows_the_daemon(&dir, &format!("http://{addr}/?token={token}"), 100, 200);
}
