//! The operator process: spawned (optionally under a wrapper such as heaptrack), read through
//! `/proc` (resident memory, peak, CPU time), asked for `/readyz`, stopped with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Failure;

/// How to start the operator.
#[derive(Clone, Debug)]
pub struct OperatorSpec {
    pub binary: PathBuf,
    /// A command the operator runs under (`heaptrack -o FILE`); its process is found below it.
    pub wrapper: Vec<String>,
    /// Extra `run` arguments (`--broker-concurrency 16`, ...).
    pub extra_args: Vec<String>,
    /// `--min-issue-interval` (the simulated tokens live seconds to minutes).
    pub min_issue_interval: String,
}

/// A running operator; killed on drop.
pub struct Operator {
    child: Option<Child>,
    /// The operator's own pid (below the wrapper, when there is one).
    pub pid: u32,
    pub http_port: u16,
    pub log: PathBuf,
}

/// The name the kernel shows for the operator (`comm` is cut to 15 bytes).
const COMM: &str = "sync-client-ope";

impl Operator {
    pub fn spawn(
        spec: &OperatorSpec,
        kubeconfig: &Path,
        dir: &Path,
        name: &str,
    ) -> Result<Self, Failure> {
        let log = dir.join(format!("{name}.log"));
        let out =
            std::fs::File::create(&log).map_err(|e| format!("log file {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("log file: {e}"))?;
        let http_port = free_port()?;
        let mut command = match spec.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&spec.binary);
                command
            }
            None => Command::new(&spec.binary),
        };
        command
            .arg("run")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--http-addr", &format!("127.0.0.1:{http_port}")])
            .args(["--log-format", "json", "--instance", name])
            .args(["--min-issue-interval", &spec.min_issue_interval])
            .args(&spec.extra_args)
            .env("RUST_LOG", "warn")
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e} (build it first)", spec.binary.display()))?;
        let top = child.id();
        let mut operator = Self {
            child: Some(child),
            pid: top,
            http_port,
            log,
        };
        if !spec.wrapper.is_empty() {
            operator.pid = operator.find_below_wrapper(top)?;
        }
        Ok(operator)
    }

    fn find_below_wrapper(&mut self, top: u32) -> Result<u32, Failure> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(pid) = descendant_named(top, COMM) {
                return Ok(pid);
            }
            if !self.alive() {
                return Err(self.died("the wrapper exited before starting the operator"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(self.died("no operator process appeared below the wrapper within 30 s"))
    }

    /// Waits until `/readyz` answers 200; returns how long that took.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<Duration, Failure> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some((200, _)) = http_get(self.http_port, "/readyz").await {
                return Ok(started.elapsed());
            }
            if !self.alive() {
                return Err(self.died("the operator exited before it was ready"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(self.died(&format!("/readyz did not answer 200 within {timeout:?}")))
    }

    /// A failure that carries the end of the operator's log.
    pub fn died(&self, what: &str) -> Failure {
        format!(
            "{what}; last lines of {}:\n{}",
            self.log.display(),
            self.log_tail(15)
        )
        .into()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Current resident set, KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        status_field(self.pid, "VmRSS:")
    }

    /// Peak resident set since start, KiB.
    pub fn hwm_kib(&self) -> Option<u64> {
        status_field(self.pid, "VmHWM:")
    }

    /// User plus system CPU time so far, seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds_of(&self.pid.to_string())
    }

    /// SIGTERM to the operator, then waits (bounded) for it and its wrapper to exit. Returns
    /// whether the operator exited successfully and how long it took.
    pub fn terminate(&mut self, timeout: Duration) -> (bool, Duration) {
        let started = Instant::now();
        let Some(mut child) = self.child.take() else {
            return (false, started.elapsed());
        };
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        while started.elapsed() < timeout {
            if let Ok(Some(status)) = child.try_wait() {
                return (status.success(), started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        (false, started.elapsed())
    }
}

impl Operator {
    /// SIGKILL to the operator (not its wrapper), then waits (bounded) for the wrapper, which
    /// finishes its own work (heaptrack writes its data) first. Returns how long that took.
    pub fn kill_and_wait(&mut self, timeout: Duration) -> Duration {
        let started = Instant::now();
        let Some(mut child) = self.child.take() else {
            return started.elapsed();
        };
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status();
        while started.elapsed() < timeout {
            if let Ok(Some(_)) = child.try_wait() {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        started.elapsed()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Under a wrapper the operator is a grandchild: end it by its own pid first.
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `utime + stime` of `/proc/<pid>/stat` (`self` for this process), in seconds.
pub fn cpu_seconds_of(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on Linux.
    Some((utime + stime) / 100.0)
}

fn descendant_named(pid: u32, comm: &str) -> Option<u32> {
    let mut queue = vec![pid];
    let mut visited = 0;
    while let Some(current) = queue.pop() {
        visited += 1;
        if visited > 1000 {
            return None;
        }
        let name = std::fs::read_to_string(format!("/proc/{current}/comm")).unwrap_or_default();
        if current != pid && name.trim_end() == comm {
            return Some(current);
        }
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{current}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            queue.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    None
}

fn free_port() -> Result<u16, Failure> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    Ok(listener
        .local_addr()
        .map_err(|e| format!("free port: {e}"))?
        .port())
}

/// GETs a path of an HTTP server on 127.0.0.1; `None` when it does not answer (bounded).
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        Some(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()??;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}
