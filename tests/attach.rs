//! One daemon, many viewers, with real processes: `htsr-watch DIR --headless` runs while the example trains with the
//! hook; from other processes the real `htsr-watch browse DIR` in tmux shows the checkpoints as they are stored,
//! sixteen viewers are attached at once (one of them SIGSTOPped the whole time), `export` taken during the run
//! equals `export` after the stop for the rows it holds, and an attached dashboard says when the daemon stops and
//! reattaches by itself when it starts again.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use htsr_api::ViewerEvent;
use htsr_client::Endpoint;
use htsr_contracts::LiveEvent;
use htsr_e2e::{binary, run_ok, shell_line, signal, train_mlp, wait_for, Tmux};

const HANG: Duration = Duration::from_secs(120);

/// `htsr-watch DIR --headless`, its log in a file; killed if the test fails.
struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    fn start(dir: &Path, log: &Path) -> Daemon {
        let child = Command::new(binary("htsr-watch"))
            .arg(dir)
            .arg("--headless")
            .env("HTSR_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon {
            child,
            log: log.to_path_buf(),
        };
        d.wait_log("serve: viewers attach at", 1);
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, needle: &str, n: usize) {
        wait_for(
            &format!("{n} x {needle:?} in the daemon's log"),
            HANG,
            || (self.log().matches(needle).count() >= n).then_some(()),
        );
    }

    fn stop(mut self) {
        signal(&self.child, libc::SIGTERM);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{}", self.log());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn export(dir: &Path) -> String {
    let out = run_ok(
        Command::new(binary("htsr-watch"))
            .arg("export")
            .arg(dir)
            .args(["--format", "csv"]),
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The pid of the `htsr-watch browse` whose command line names `dir`, started in tmux by the test.
fn browse_pid(dir: &Path) -> i32 {
    wait_for("the browse process", HANG, || {
        let out = Command::new("pgrep")
            .args(["-f", &format!("htsr-watch browse {}", dir.display())])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    })
}

#[test]
fn many_viewers_attach_to_one_daemon_while_it_works_and_follow_its_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("runs");
    std::fs::create_dir_all(&dir).unwrap();
    let root = dir.display().to_string();
    let daemon = Daemon::start(&dir, &tmp.path().join("daemon.log"));

    // The real dashboard, attached from another process.
    let viewer = Tmux::start(
        &shell_line(&binary("htsr-watch"), &["browse", &root]),
        110,
        32,
    );
    viewer.wait_for_text(&["live (attached)", "Waiting for checkpoints"], HANG);
    // A second dashboard that is stopped (SIGSTOP) the whole time checkpoints arrive.
    let stuck_dir = tmp.path().join("stuck-view");
    std::os::unix::fs::symlink(&dir, &stuck_dir).unwrap();
    let stuck = Tmux::start(
        &shell_line(
            &binary("htsr-watch"),
            &["browse", &stuck_dir.display().to_string()],
        ),
        100,
        30,
    );
    stuck.wait_for_text(&["live (attached)"], HANG);
    let stuck_pid = browse_pid(&stuck_dir);
    // SAFETY: kill(2) on a process this test started.
    assert_eq!(unsafe { libc::kill(stuck_pid, libc::SIGSTOP) }, 0);
    // Fourteen more viewers of the live events, in this process: sixteen in all.
    let socket = Endpoint::for_store(&dir.join(".htsr"));
    let followers: Vec<_> = (0..14)
        .map(|_| htsr_client::follow(socket.clone(), None))
        .collect();
    for f in &followers {
        assert!(matches!(
            f.recv_timeout(HANG).unwrap(),
            ViewerEvent::Attached(_)
        ));
    }

    // Training writes checkpoints at steps 20, 40 and 60 while everything is attached.
    train_mlp(&dir, "live", 60, 20);
    daemon.wait_log("stored run=live step=60", 1);
    let screen = viewer.wait_for_text(&["run live", "step 60", "fc1", "fc2", "fc3"], HANG);
    assert!(screen.contains("3 checkpoints"), "{screen}");
    for f in &followers {
        let mut steps = Vec::new();
        while steps.len() < 3 {
            if let ViewerEvent::Live(LiveEvent::CheckpointStored { step, .. }) =
                f.recv_timeout(HANG).unwrap()
            {
                steps.push(step);
            }
        }
        assert_eq!(steps, [20, 40, 60]);
    }
    // The stopped viewer held nothing up: every checkpoint was stored while it slept.
    assert_eq!(daemon.log().matches("stored run=live").count(), 3);
    let during = export(&dir);
    assert_eq!(during.lines().count(), 1 + 3 * 3, "{during}");

    // Woken up, the stopped dashboard catches up.
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(stuck_pid, libc::SIGCONT) }, 0);
    stuck.wait_for_text(&["step 60", "fc3"], HANG);

    // The daemon stops: the attached dashboard says so and keeps showing the history; it comes back: the
    // dashboard reattaches by itself and shows what the new daemon stores.
    daemon.stop();
    viewer.wait_for_text(&["daemon stopped, reconnecting"], HANG);
    let daemon = Daemon::start(&dir, &tmp.path().join("daemon-2.log"));
    viewer.wait_for_text(&["attached to the htsr-watch daemon"], HANG);
    train_mlp(&dir, "second", 20, 20);
    daemon.wait_log("stored run=second step=20", 1);
    // The dashboard follows the run receiving checkpoints (the user picked none).
    viewer.wait_for_text(&["run second", "step 20"], HANG);
    daemon.stop();

    // After the stop, the same export (the store read directly) holds the rows taken during the run, unchanged.
    let after = export(&dir);
    for line in during.lines() {
        assert!(
            after.lines().any(|l| l == line),
            "a row changed or vanished: {line}"
        );
    }
    assert_eq!(after.lines().count(), 1 + 4 * 3);
    let screen = viewer.quit_and_check_restored(HANG);
    assert!(!screen.contains("Phase map"), "{screen}");
    stuck.keys(&["q"]);
}
