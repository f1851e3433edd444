//! `hal9 devnet` must never leave node or anvil processes behind: not when
//! it is stopped by SIGTERM or SIGINT, not when the signal comes in the
//! middle of its demo, and not when a second signal comes in the middle of
//! its own shutdown.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use super::harness::bin;

/// A running `hal9 devnet` and the lines it printed so far (stdout and stderr).
struct Devnet {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Devnet {
    fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin())
            .args(["--log", "warn", "devnet", "--nodes", "3", "--dir"])
            .arg(dir.path().join("net"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hal9 devnet");
        let (tx, lines) = mpsc::channel();
        let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        for stream in [out, err] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            child,
            lines,
            seen: Vec::new(),
            _dir: dir,
        }
    }

    /// Waits for a printed line that contains `what`.
    fn wait_line(&mut self, what: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.seen.iter().any(|l| l.contains(what)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "devnet did not print {what:?} within {timeout:?}; it printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits until the devnet has at least `n` child processes and returns them.
    fn wait_children(&mut self, n: usize, timeout: Duration) -> Vec<u32> {
        let deadline = Instant::now() + timeout;
        loop {
            let kids = children(self.child.id());
            if kids.len() >= n {
                return kids;
            }
            assert!(
                Instant::now() < deadline,
                "devnet has {} child processes after {timeout:?}, expected {n}",
                kids.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} failed");
    }

    /// Waits for the devnet to exit; returns whether it exited with 0.
    fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "devnet still running {timeout:?} after the signal; it printed:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Process ids whose parent is `parent` (from /proc).
fn children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some((state, ppid)) = stat(pid)
            && ppid == parent
            && state != 'Z'
        {
            out.push(pid);
        }
    }
    out
}

/// State and parent of a process, from /proc/PID/stat.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Processes of `pids` that are still alive (not gone, not a zombie).
fn alive(pids: &[u32]) -> Vec<u32> {
    pids.iter()
        .copied()
        .filter(|&p| matches!(stat(p), Some((s, _)) if s != 'Z'))
        .collect()
}

fn assert_all_gone(pids: &[u32], net: &Devnet) {
    // The devnet waits for its children, so they are gone when it has exited;
    // allow a moment for a killed process to be torn down by the kernel.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !alive(pids).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = alive(pids);
    for &p in &left {
        let _ = Command::new("kill")
            .args(["-KILL", &p.to_string()])
            .status();
    }
    assert!(
        left.is_empty(),
        "processes {left:?} of {pids:?} outlived the devnet; it printed:\n{}",
        net.seen.join("\n")
    );
}

fn stop_running_network(sig: &str) {
    let mut net = Devnet::start(&["--standalone", "--keep-running"]);
    net.wait_line("network running", Duration::from_secs(180));
    let nodes = net.wait_children(3, Duration::from_secs(10));
    net.signal(sig);
    assert!(
        net.wait_exit(Duration::from_secs(60)),
        "a signal is the normal end of --keep-running: exit 0 expected; printed:\n{}",
        net.seen.join("\n")
    );
    assert!(net.seen.iter().any(|l| l.contains("all nodes stopped")));
    assert_all_gone(&nodes, &net);
}

#[test]
fn sigterm_stops_a_kept_running_devnet_and_every_node() {
    stop_running_network("-TERM");
}

#[test]
fn sigint_stops_a_kept_running_devnet_and_every_node() {
    stop_running_network("-INT");
}

#[test]
fn a_second_sigterm_during_shutdown_still_leaves_nothing_behind() {
    let mut net = Devnet::start(&["--standalone", "--keep-running"]);
    net.wait_line("network running", Duration::from_secs(180));
    let nodes = net.wait_children(3, Duration::from_secs(10));
    net.signal("-TERM");
    net.wait_line("stopping 3 nodes", Duration::from_secs(10));
    net.signal("-TERM");
    net.wait_exit(Duration::from_secs(60));
    assert_all_gone(&nodes, &net);
}

#[test]
fn signals_in_the_middle_of_the_chain_demo_stop_anvil_and_the_nodes() {
    let mut net = Devnet::start(&[]);
    net.wait_line("starting 3 nodes", Duration::from_secs(120));
    // anvil and the three nodes.
    let procs = net.wait_children(4, Duration::from_secs(120));
    net.signal("-TERM");
    net.signal("-TERM");
    assert!(
        !net.wait_exit(Duration::from_secs(60)),
        "an interrupted demo must not exit 0"
    );
    assert!(
        net.seen
            .iter()
            .any(|l| l.contains("interrupted by SIGTERM")),
        "the devnet says why it stopped; printed:\n{}",
        net.seen.join("\n")
    );
    assert_all_gone(&procs, &net);
}
