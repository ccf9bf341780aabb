//! Headless Chromium for the report's tests: a page loaded over the DevTools protocol (on a pipe, so no port, no
//! websocket and no client library) to collect every console error, exception and failed load, and a screenshot
//! taken the way a user would (`chromium --headless --screenshot`). Every process is killed when dropped.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long a step may take before the test calls it a hang (not a performance bound: a healthy step takes a
/// second or two).
const HANG: Duration = Duration::from_secs(120);

/// The Chromium binary: `HTSR_CHROMIUM`, else `chromium` (Debian's package) on PATH. Missing is a failure, not a
/// skip: the report's browser test is part of the suite.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("HTSR_CHROMIUM") {
        return PathBuf::from(p);
    }
    for name in ["chromium", "chromium-browser"] {
        if let Some(dir) = std::env::var_os("PATH") {
            for d in std::env::split_paths(&dir) {
                let p = d.join(name);
                if p.is_file() {
                    return p;
                }
            }
        }
    }
    panic!("chromium is not installed (the report's browser test needs Debian's `chromium`): run bash scripts/setup");
}

/// The flags every launch uses: no sandbox (tests run as root), no GPU, and nothing that reaches for the network
/// (without these, Chromium retries connections the machine cannot make).
pub fn base_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-quic",
        "--mute-audio",
        "--hide-scrollbars",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(std::iter::once(format!(
        "--user-data-dir={}",
        profile.display()
    )))
    .collect()
}

/// A child process killed (and reaped) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// What loading a page produced.
#[derive(Debug, Default)]
pub struct PageLoad {
    /// Console errors, uncaught exceptions, failed loads and error log entries, one line each.
    pub problems: Vec<String>,
    /// The value of the expression evaluated after the load.
    pub facts: Value,
    /// The tab's DevTools session, for [`Browser::evaluate`] on the page later.
    pub session: String,
}

/// A browser driven over `--remote-debugging-pipe`: commands are written to its fd 3, replies and events read
/// from its fd 4, each a JSON message ended by a NUL byte.
pub struct Browser {
    child: Killed,
    commands: File,
    messages: Receiver<Value>,
    next_id: u64,
    stderr: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn launch() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let stderr = profile.path().join("chromium.stderr");
        let (cmd_read, cmd_write) = pipe();
        let (msg_read, msg_write) = pipe();
        let (cr, mw) = (cmd_read.as_raw_fd(), msg_write.as_raw_fd());
        let mut command = Command::new(binary());
        command
            .args(base_args(&profile.path().join("profile")))
            .arg("--remote-debugging-pipe")
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).unwrap());
        // The child gets the pipe ends as fds 3 and 4. They are first copied above 10, because either end may
        // itself be fd 3 or 4 (dup2 onto itself would keep close-on-exec, and could overwrite the other end);
        // dup2 clears close-on-exec on the final copies.
        unsafe {
            command.pre_exec(move || {
                let a = libc::fcntl(cr, libc::F_DUPFD, 10);
                let b = libc::fcntl(mw, libc::F_DUPFD, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(a);
                libc::close(b);
                Ok(())
            });
        }
        let child = Killed(command.spawn().expect("start chromium"));
        drop(cmd_read);
        drop(msg_write);
        let (tx, rx) = mpsc::channel();
        let mut reader = File::from(msg_read);
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            loop {
                let n = match reader.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                while let Some(end) = buf.iter().position(|b| *b == 0) {
                    let msg: Vec<u8> = buf.drain(..=end).collect();
                    if let Ok(v) = serde_json::from_slice::<Value>(&msg[..msg.len() - 1]) {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Browser {
            child,
            commands: File::from(cmd_write),
            messages: rx,
            next_id: 1,
            stderr,
            _profile: profile,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn next(&mut self, deadline: Instant, waiting_for: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.messages.recv_timeout(left) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => panic!(
                "chromium: no {waiting_for} within {HANG:?}; its stderr:\n{}",
                self.log()
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "chromium closed its DevTools pipe while waiting for {waiting_for}; status {:?}; stderr:\n{}",
                self.child.0.try_wait(),
                self.log()
            ),
        }
    }

    /// Sends a command and waits for its reply; events that arrive meanwhile go to `events`.
    fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
        events: &mut Vec<Value>,
    ) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).unwrap();
        let deadline = Instant::now() + HANG;
        loop {
            let v = self.next(deadline, method);
            if v["id"] == json!(id) {
                assert!(
                    v.get("error").is_none(),
                    "chromium: {method} failed: {}",
                    v["error"]
                );
                return v["result"].clone();
            }
            events.push(v);
        }
    }

    /// Opens `url` in a new tab, waits for its load event, then evaluates `expression` (returned by value in
    /// [`PageLoad::facts`]). Problems are everything a reader would see in the DevTools console as an error.
    pub fn load(&mut self, url: &str, expression: &str) -> PageLoad {
        let mut events = Vec::new();
        let target = self.call(
            None,
            "Target.createTarget",
            json!({"url": "about:blank"}),
            &mut events,
        );
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
            &mut events,
        );
        let session = attached["sessionId"].as_str().unwrap().to_string();
        let s = Some(session.as_str());
        for domain in ["Page", "Runtime", "Log", "Network"] {
            self.call(s, &format!("{domain}.enable"), json!({}), &mut events);
        }
        let nav = self.call(s, "Page.navigate", json!({"url": url}), &mut events);
        let mut problems = Vec::new();
        if let Some(e) = nav.get("errorText").and_then(Value::as_str) {
            problems.push(format!("navigation failed: {e}"));
        }
        let deadline = Instant::now() + HANG;
        let loaded = |v: &Value| v["method"] == "Page.loadEventFired" && v["sessionId"] == session;
        if !events.iter().any(loaded) {
            loop {
                let v = self.next(deadline, "Page.loadEventFired");
                let done = loaded(&v);
                events.push(v);
                if done {
                    break;
                }
            }
        }
        // One more round trip after the load: messages the page logged while loading arrive before its reply.
        let facts = self.call(
            s,
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
            &mut events,
        );
        problems.extend(problems_in(&events, &session));
        PageLoad {
            problems,
            facts: facts["result"]["value"].clone(),
            session,
        }
    }

    /// Evaluates `expression` in the page of `session` (from [`Browser::load`]) as it is now; returns its value
    /// and the problems the page reported since the last call.
    pub fn evaluate(&mut self, session: &str, expression: &str) -> (Value, Vec<String>) {
        let mut events = Vec::new();
        let v = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
            &mut events,
        );
        (v["result"]["value"].clone(), problems_in(&events, session))
    }
}

/// What a reader would see in the DevTools console as an error, among `events` of `session`.
fn problems_in(events: &[Value], session: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for v in events.iter().filter(|v| v["sessionId"] == session) {
        let p = &v["params"];
        match v["method"].as_str() {
            Some("Runtime.consoleAPICalled") if p["type"] == "error" || p["type"] == "assert" => {
                problems.push(format!("console.{}: {}", p["type"], p["args"]))
            }
            Some("Runtime.exceptionThrown") => {
                problems.push(format!("exception: {}", p["exceptionDetails"]))
            }
            Some("Log.entryAdded") if p["entry"]["level"] == "error" => problems.push(format!(
                "log ({}): {} {}",
                p["entry"]["source"], p["entry"]["text"], p["entry"]["url"]
            )),
            Some("Network.loadingFailed") => {
                problems.push(format!("failed load: {}", p["errorText"]))
            }
            _ => {}
        }
    }
    problems
}

/// `chromium --headless --screenshot=OUT --window-size=W,H URL`, as a user would take it; returns the PNG's path.
pub fn screenshot(url: &str, out: &Path, window: (u32, u32)) -> PathBuf {
    let profile = tempfile::tempdir().unwrap();
    let log = profile.path().join("stderr");
    let mut child = Killed(
        Command::new(binary())
            .args(base_args(&profile.path().join("profile")))
            .arg(format!("--screenshot={}", out.display()))
            .arg(format!("--window-size={},{}", window.0, window.1))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("start chromium"),
    );
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < HANG,
            "chromium --screenshot hung; stderr:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success() && out.is_file(),
        "chromium --screenshot failed ({status}); stderr:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    out.to_path_buf()
}

/// An image decoded to RGB pixels.
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<[u8; 3]>,
}

pub fn decode_png(path: &Path) -> Image {
    let decoder = png::Decoder::new(std::io::BufReader::new(File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "{}", path.display());
    let samples = info.color_type.samples();
    assert!(samples >= 3, "{}: not an RGB image", path.display());
    let rgb = buf[..info.buffer_size()]
        .chunks(samples)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    Image {
        width: info.width,
        height: info.height,
        rgb,
    }
}

impl Image {
    /// Share of pixels that are not (near) white.
    pub fn ink(&self) -> f64 {
        let n = self
            .rgb
            .iter()
            .filter(|p| p.iter().any(|c| *c < 245))
            .count();
        n as f64 / self.rgb.len().max(1) as f64
    }

    pub fn distinct_colours(&self) -> usize {
        let mut v: Vec<[u8; 3]> = self.rgb.clone();
        v.sort_unstable();
        v.dedup();
        v.len()
    }

    /// Pixels of exactly this colour.
    pub fn count(&self, colour: [u8; 3]) -> usize {
        self.rgb.iter().filter(|p| **p == colour).count()
    }
}
