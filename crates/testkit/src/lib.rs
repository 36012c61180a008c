//! Helpers for the end-to-end tests: find a required program (never skip: a missing one fails
//! the test with how to install it), pick a free loopback port, and run real servers (nginx
//! and redis-server) that are stopped by PID when dropped, even when the test panics.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a panic is the report

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path of `program`, or a panic saying how to get it.
pub fn require(program: &str) -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
    {
        let p = Path::new(dir).join(program);
        if p.is_file() {
            return p;
        }
    }
    panic!("{program} is required for this test (run ./test.sh, which installs it)");
}

/// A temporary folder web servers running as another user can read (0755).
pub fn public_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    make_public(dir.path());
    dir
}

/// Creates `path` (and its parents) readable by web servers.
pub fn public_subdir(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    make_public(path);
}

fn make_public(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Writes `data` to `path` readable by web servers (0644), aside and renamed as an upload
/// would: a server keeps sending the old file to requests already running.
pub fn write_public(path: &Path, data: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("uploading");
    std::fs::write(&tmp, data).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// `size` bytes that neither compress nor repeat, from `seed`.
pub fn bytes_of(size: usize, seed: &str) -> Vec<u8> {
    let mut data = vec![0u8; size];
    let mut hasher = blake3::Hasher::new();
    hasher.update(seed.as_bytes());
    hasher.finalize_xof().fill(&mut data);
    data
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts on `port`, failing if `child` exits first.
pub fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not open port {port}");
}

/// A child process killed (by PID) and reaped when dropped.
pub struct Process {
    pub child: Child,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real nginx serving `root` on a loopback port, with its own config, logs and temp
/// folders. `extra` is added inside the `server {}` block (e.g. `limit_rate 100k;`).
pub struct Nginx {
    pub port: u16,
    pub dir: tempfile::TempDir,
    process: Process,
}

impl Nginx {
    pub fn start(root: &Path, extra: &str) -> Self {
        Self::start_at(free_port(), root, extra)
    }

    /// The same on a chosen port (when URLs naming it must be written first).
    pub fn start_at(port: u16, root: &Path, extra: &str) -> Self {
        Self::start_full(port, root, "", extra)
    }

    /// With `http_extra` in the `http {}` block too (zones for `limit_conn`, say).
    pub fn start_with_http(root: &Path, http_extra: &str, extra: &str) -> Self {
        Self::start_full(free_port(), root, http_extra, extra)
    }

    fn start_full(port: u16, root: &Path, http_extra: &str, extra: &str) -> Self {
        let nginx = require("nginx");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        // One process (`master_process off`), so stopping it by PID stops all of nginx: a
        // master killed with SIGKILL would leave its workers serving.
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n\
             log_format alluvium '$request_method $uri $status $body_bytes_sent \"$http_range\"';\n\
             access_log {d}/access.log alluvium;\n  client_body_temp_path {d}/tmp;\n\
             proxy_temp_path {d}/tmp;\n  fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n\
             scgi_temp_path {d}/tmp;\n  {http_extra}\n\
             server {{\n    listen 127.0.0.1:{port};\n    root {root};\n    {extra}\n  }}\n}}\n",
            root = root.display()
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new(nginx)
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut process = Process { child };
        wait_for_port(port, &mut process.child, "nginx");
        Self { port, dir, process }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Access log lines: `METHOD URI STATUS BODY_BYTES "RANGE"`.
    pub fn access_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// How many GETs of `path` the access log shows.
    pub fn gets(&self, path: &str) -> usize {
        let prefix = format!("GET {path} ");
        self.access_log()
            .iter()
            .filter(|l| l.starts_with(&prefix))
            .count()
    }
}

/// A real redis-server on a loopback port, in memory only (no snapshot or log files), so a
/// restart starts empty as a crashed Redis without persistence would. Stopped by PID on drop.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    process: Option<Process>,
}

impl RedisServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut redis = Self {
            port: free_port(),
            dir,
            process: None,
        };
        redis.restart();
        redis
    }

    /// `redis://127.0.0.1:PORT/0`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Process::pid)
    }

    /// Kills it (SIGKILL: what it held is gone).
    pub fn kill(&mut self) {
        self.process = None;
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new(require("redis-server"))
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut process = Process { child };
        wait_for_port(self.port, &mut process.child, "redis-server");
        self.process = Some(process);
    }
}

/// The BLAKE3 hash `b3sum` prints for a file.
pub fn b3sum(path: &Path) -> String {
    let out = Command::new(require("b3sum"))
        .arg("--no-names")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "b3sum {}", path.display());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
