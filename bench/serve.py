"""What viewers cost the daemon, and how fast they see a checkpoint (run by scripts/bench-serve).

The real release binary watches a fresh directory, headless; checkpoints (four 768x384 float32 layers) are
written the way the hook writes them (temporary name, then rename), one every INTERVAL seconds, so that each is
analyzed before the next arrives. A probe follows the daemon's event stream on its Unix socket: the time of each
`checkpoint_stored` event is when the store was written.

Measured, each with 0, 1 and 16 real dashboards attached (`htsr-watch browse DIR` in tmux, one of the sixteen
SIGSTOPped the whole time):
- checkpoint latency: file renamed -> stored (the daemon's own work: detection, analysis, store write);
- daemon CPU: utime + stime of the daemon over the checkpoints, per checkpoint;
- with 1 dashboard: store written -> the dashboard's screen shows the step (tmux polled every 5 ms);
- with 0 dashboards: store written -> `htsr.history(DIR)` in Python returns the step (called back to back);
and, with 4 dashboards attached and nothing arriving, the daemon's idle CPU over IDLE seconds.
"""

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
from safetensors.numpy import save_file

CLK_TCK = os.sysconf("SC_CLK_TCK")


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def probe_main(sock_path):
    """Follows /api/v1/events on the daemon's socket and prints "STEP MONOTONIC_TIME" when a step is stored. A
    process of its own, so that its clock readings never wait for another thread's interpreter lock."""
    conn = UnixConnection(sock_path)
    conn.request("GET", "/api/v1/events", headers={"Accept": "text/event-stream"})
    resp = conn.getresponse()
    print("ready", flush=True)
    event = None
    while True:
        line = resp.fp.readline()
        if not line:
            return
        line = line.decode().rstrip("\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event == "live":
            ev = json.loads(line[5:])
            if ev.get("event") == "checkpoint_stored":
                print(ev["step"], time.monotonic(), flush=True)


def reader_main(directory, step):
    """Calls htsr.history(DIR) every 20 ms until it holds STEP; prints when it did, and how long the call took."""
    import htsr

    htsr.history(directory)  # the first call pays for imports and the connection set-up
    print("ready", flush=True)
    while True:
        t0 = time.monotonic()
        df = htsr.history(directory)
        t1 = time.monotonic()
        if (df["step"] == step).any():
            print(t1, t1 - t0, flush=True)
            return
        time.sleep(0.02)


class Probe(threading.Thread):
    """Reads the probe process's lines: when each step was stored."""

    def __init__(self, sock_path):
        super().__init__(daemon=True)
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--probe", sock_path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        if self.proc.stdout.readline().strip() != "ready":
            sys.exit("bench-serve: the probe did not connect")
        self.stored = {}
        self.cond = threading.Condition()

    def run(self):
        for line in self.proc.stdout:
            step, t = line.split()
            with self.cond:
                self.stored[int(step)] = float(t)
                self.cond.notify_all()

    def wait_stored(self, step, timeout=120):
        with self.cond:
            if not self.cond.wait_for(lambda: step in self.stored, timeout):
                sys.exit(f"bench-serve: step {step} was not stored within {timeout} s")
            return self.stored[step]


def write_checkpoint(run_dir, step, rng):
    os.makedirs(run_dir, exist_ok=True)
    tensors = {f"layer{i}.weight": rng.standard_normal((768, 384)).astype(np.float32) for i in range(4)}
    final = os.path.join(run_dir, f"step-{step:06d}.safetensors")
    tmp = os.path.join(run_dir, f".step-{step:06d}.safetensors.tmp")
    save_file(tensors, tmp, metadata={"htsr.step": str(step)})
    os.rename(tmp, final)
    return time.monotonic()


def tmux(*args):
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def screen(session):
    return tmux("capture-pane", "-p", "-t", session)


def wait_screen(session, text, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in screen(session):
            return time.monotonic()
        time.sleep(0.005)
    sys.exit(f"bench-serve: {session} never showed {text!r}:\n{screen(session)}")


def pane_pid(session):
    return int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip())


def dashboard_pid(session):
    """The dashboard's process: the pane's own process, or its child when a shell runs it."""
    pid = pane_pid(session)
    with open(f"/proc/{pid}/comm") as f:
        if f.read().strip() == "htsr-watch":
            return pid
    return int(subprocess.check_output(["pgrep", "-P", str(pid), "htsr-watch"]).split()[0])


class Setup:
    def __init__(self, watch, clients, stopped):
        self.tmp = tempfile.TemporaryDirectory(prefix="htsr-bench-serve-")
        self.dir = os.path.join(self.tmp.name, "watched")
        os.makedirs(self.dir)
        self.rng = np.random.default_rng(7)
        self.step = 0
        self.daemon = self.probe = None
        self.sessions, self.stopped = [], []
        try:
            self.start(watch, clients, stopped)
        except BaseException:
            self.close()
            raise

    def start(self, watch, clients, stopped):
        self.daemon = subprocess.Popen(
            [watch, self.dir, "--headless"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        sock = os.path.join(self.dir, ".htsr.sock")
        deadline = time.monotonic() + 60
        while not os.path.exists(sock):
            if time.monotonic() > deadline:
                sys.exit("bench-serve: the daemon made no socket")
            time.sleep(0.01)
        self.probe = Probe(sock)
        self.probe.start()
        # A first checkpoint, so that dashboards have a run to show.
        self.write()
        self.probe.wait_stored(self.step)
        for i in range(clients):
            name = f"htsr-bench-{os.getpid()}-{i}"
            tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "30", f"{watch} browse {self.dir}")
            self.sessions.append(name)
        for name in self.sessions:
            wait_screen(name, "live (attached)")
        for name in self.sessions[:stopped]:
            pid = dashboard_pid(name)
            os.kill(pid, 19)  # SIGSTOP
            self.stopped.append(pid)

    def write(self):
        self.step += 100
        return write_checkpoint(os.path.join(self.dir, "run"), self.step, self.rng)

    def close(self):
        for pid in self.stopped:
            os.kill(pid, 18)  # SIGCONT
        for name in self.sessions:
            subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
        if self.probe:
            self.probe.proc.kill()
        if self.daemon:
            self.daemon.send_signal(2)
            self.daemon.wait(timeout=60)
        self.tmp.cleanup()


def ms(xs):
    return f"median {1000 * statistics.median(xs):.1f} ms (min {1000 * min(xs):.1f}, max {1000 * max(xs):.1f})"


def checkpoints(watch, clients, stopped, n, interval, dashboard=False, python=False):
    s = Setup(watch, clients, stopped)
    try:
        latencies, to_dashboard, to_python, calls = [], [], [], []
        cpu0 = cpu_seconds(s.daemon.pid)
        for _ in range(n):
            reader = None
            if python:
                reader = subprocess.Popen(
                    [sys.executable, __file__, "--reader", s.dir, str(s.step + 100)],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                if reader.stdout.readline().strip() != "ready":
                    sys.exit("bench-serve: the Python reader did not start")
            t_file = s.write()
            step = s.step
            t_stored = s.probe.wait_stored(step)
            latencies.append(t_stored - t_file)
            if reader:
                t_seen, call = map(float, reader.stdout.readline().split())
                reader.wait()
                to_python.append(t_seen - t_stored)
                calls.append(call)
            if dashboard:
                t_seen = wait_screen(s.sessions[0], f"step {step} ·")
                to_dashboard.append(t_seen - t_stored)
            time.sleep(max(0.0, interval - (time.monotonic() - t_file)))
        cpu = cpu_seconds(s.daemon.pid) - cpu0
        return latencies, cpu / n, to_dashboard, (to_python, calls)
    finally:
        s.close()


def idle(watch, clients, seconds):
    s = Setup(watch, clients, 0)
    try:
        time.sleep(5)
        cpu0, t0 = cpu_seconds(s.daemon.pid), time.monotonic()
        time.sleep(seconds)
        return (cpu_seconds(s.daemon.pid) - cpu0) / (time.monotonic() - t0)
    finally:
        s.close()


def main():
    if sys.argv[1:2] == ["--probe"]:
        return probe_main(sys.argv[2])
    if sys.argv[1:2] == ["--reader"]:
        return reader_main(sys.argv[2], int(sys.argv[3]))
    # A SIGTERM (timeout, Ctrl-C in a wrapper) unwinds through the `finally`s, which stop the daemon and the dashboards.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    ap = argparse.ArgumentParser()
    ap.add_argument("watch", help="the htsr-watch binary")
    ap.add_argument("--checkpoints", type=int, default=20)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--idle-seconds", type=float, default=60)
    a = ap.parse_args()
    print(f"bench-serve: {os.cpu_count()} cores; {a.checkpoints} checkpoints of 4 layers 768x384, one every {a.interval} s")
    for clients, stopped in [(0, 0), (1, 0), (16, 1)]:
        lat, cpu, dash, py = checkpoints(
            a.watch, clients, stopped, a.checkpoints, a.interval, dashboard=clients == 1, python=clients == 0
        )
        who = f"{clients} dashboards" + (f" ({stopped} SIGSTOPped)" if stopped else "")
        print(f"{who:>28}: checkpoint latency {ms(lat)}; daemon CPU {1000 * cpu:.0f} ms per checkpoint")
        if dash:
            print(f"{'':>28}  store written -> dashboard shows it: {ms(dash)}")
        if py[0]:
            print(f"{'':>28}  store written -> htsr.history() returns it, polled every 20 ms: {ms(py[0])}")
            print(f"{'':>28}  one htsr.history() call (the whole history): {ms(py[1])}")
    share = idle(a.watch, 4, a.idle_seconds)
    print(f"{'4 dashboards, idle':>28}: daemon CPU {100 * share:.3f}% of one core over {a.idle_seconds:.0f} s")


if __name__ == "__main__":
    main()
