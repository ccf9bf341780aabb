//! Helpers for the end-to-end tests: the real binaries (built by `cargo build --workspace --bins`, which
//! `scripts/test` runs first, and by `cargo test --workspace` itself), checkpoints written as a trainer would,
//! and a tmux session to drive the dashboard in a real terminal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `target/<profile>/`, the folder holding this test binary's `deps/`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// A workspace binary (htsr-watch, mlp, ...). Fails, never skips, when it was not built.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace binaries first (`cargo build --workspace --bins`, run by scripts/test)",
        path.display()
    );
    path
}

/// Runs a command to completion, asserting success, and returns its output.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed with {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Polls `f` every 100 ms until it returns Some, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `*.safetensors` files of a run directory, sorted.
pub fn checkpoint_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Trains the minimal example with the hook into `dir/run`.
pub fn train_mlp(dir: &Path, run: &str, steps: u64, every: u64) -> Output {
    train_mlp_with(dir, run, steps, every, &[])
}

/// [`train_mlp`] with extra environment for the hook (`HTSR_MODE`, `RANK`, `WORLD_SIZE`, ...).
pub fn train_mlp_with(
    dir: &Path,
    run: &str,
    steps: u64,
    every: u64,
    env: &[(&str, &str)],
) -> Output {
    train_example("mlp", dir, run, steps, every, env)
}

/// Trains one of the MLP examples (`mlp` with tch, `burn-mlp`, `candle-mlp`: the same options) into `dir/run`,
/// with the hook's environment cleared but for `env`.
pub fn train_example(
    program: &str,
    dir: &Path,
    run: &str,
    steps: u64,
    every: u64,
    env: &[(&str, &str)],
) -> Output {
    let data = workspace_root().join(".data/mnist1d");
    assert!(
        data.join("info.json").is_file(),
        "MNIST-1D is missing at {}: run `bash scripts/setup` first",
        data.display()
    );
    run_ok(
        Command::new(binary(program))
            .arg("--dir")
            .arg(dir)
            .args([
                "--run",
                run,
                "--steps",
                &steps.to_string(),
                "--every",
                &every.to_string(),
            ])
            .arg("--data")
            .arg(data)
            .env_remove("HTSR_MODE")
            .env_remove("RANK")
            .env_remove("WORLD_SIZE")
            .env_remove("SLURM_PROCID")
            .env_remove("SLURM_NTASKS")
            .envs(env.iter().copied()),
    )
}

/// The repository root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// Sends a signal to a child process.
pub fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on a pid we own.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill({}, {sig})", child.id());
}

/// A detached tmux session running one command in a terminal of the given size; killed on drop.
pub struct Tmux {
    pub name: String,
}

impl Tmux {
    pub fn start(command: &str, width: u16, height: u16) -> Tmux {
        assert!(
            Command::new("tmux")
                .arg("-V")
                .output()
                .is_ok_and(|o| o.status.success()),
            "tmux is required for the dashboard tests: `bash scripts/setup` installs it"
        );
        let name = format!("htsr-e2e-{}-{}", std::process::id(), unique());
        run_ok(Command::new("tmux").args([
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]));
        // Keep the pane (and its last screen) after the command exits, so that the test can read it.
        run_ok(Command::new("tmux").args(["set-option", "-t", &name, "remain-on-exit", "on"]));
        Tmux { name }
    }

    /// The visible screen as text.
    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen contains every one of `needles`.
    pub fn wait_for_text(&self, needles: &[&str], timeout: Duration) -> String {
        let mut last = String::new();
        let start = Instant::now();
        loop {
            last = self.screen_or(last);
            if needles.iter().all(|n| last.contains(n)) {
                return last;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {needles:?}; screen was:\n{last}"
            );
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn screen_or(&self, previous: String) -> String {
        let s = self.screen();
        if s.is_empty() {
            previous
        } else {
            s
        }
    }

    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            run_ok(Command::new("tmux").args(["send-keys", "-t", &self.name, k]));
            std::thread::sleep(Duration::from_millis(120));
        }
    }

    /// Presses `q`, waits for the program started by [`shell_line`] to exit 0, and asserts that the terminal is
    /// back in cooked mode with echo on. Returns the final screen.
    pub fn quit_and_check_restored(&self, timeout: Duration) -> String {
        self.keys(&["q"]);
        let screen = self.wait_for_text(&["htsr-exit=0"], timeout);
        assert!(
            screen.contains("icanon") && !screen.contains("-icanon"),
            "cooked mode restored:\n{screen}"
        );
        assert!(
            screen.contains("echo") && !screen.contains("-echo"),
            "echo restored:\n{screen}"
        );
        screen
    }

    pub fn resize(&self, width: u16, height: u16) {
        run_ok(Command::new("tmux").args([
            "resize-window",
            "-t",
            &self.name,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]));
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .output();
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A shell command line that runs `program args...` and then reports how it exited and whether the terminal is
/// back in cooked mode (`stty` prints `icanon` and `echo`, not `-icanon -echo`, once raw mode is undone).
pub fn shell_line(program: &Path, args: &[&str]) -> String {
    let mut line = shell_quote(&program.display().to_string());
    for a in args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    format!("sh -c '{line}; echo htsr-exit=$?; stty -a | tr \" \" \"\\n\" | grep -x -e icanon -e -icanon -e echo -e -echo | tr \"\\n\" \" \"; echo; sleep 60'")
}

fn shell_quote(s: &str) -> String {
    assert!(
        !s.contains(['\'', '"']) && !s.contains(char::is_whitespace),
        "test paths have no quotes or spaces: {s}"
    );
    s.to_string()
}
