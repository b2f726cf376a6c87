//! A server process (Kea, dnsmasq) started by a test inside a namespace it made, with its files
//! (config, lease file, log, stderr) in a temp dir of the test's: started, waited for until
//! its log says it serves, killed on drop. What the servers' harnesses share; each keeps its
//! own config and lease-file reading.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::TestNetns;

/// A running server.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    dir: tempfile::TempDir,
    log: &'static str,
}

/// A new temp dir for a server's files, named `prefix…`.
pub(crate) fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

impl Server {
    /// Runs `program` in `ns` (`args` adds its arguments and environment), its stderr to
    /// `dir/stderr`, and waits until `dir/log` (its log file) contains `ready`, 10 s at most.
    pub(crate) fn start(
        ns: &TestNetns,
        dir: tempfile::TempDir,
        program: &str,
        log: &'static str,
        ready: &str,
        args: impl FnOnce(&mut Command),
    ) -> Self {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &ns.name, program]);
        args(&mut command);
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let mut server = Self { child, dir, log };
        let start = Instant::now();
        while !server.log().contains(ready) {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "{program} exited ({status}): {}{}",
                    server.stderr(),
                    server.log()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{program} did not start: {}{}",
                server.stderr(),
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The server's temp dir.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(self.log)).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Kills the server (a server down) and gives its temp dir back without the log, for a
    /// server started again on the same files.
    pub(crate) fn stop(mut self) -> tempfile::TempDir {
        self.kill();
        let _ = std::fs::remove_file(self.dir.path().join(self.log));
        std::mem::replace(&mut self.dir, temp_dir("omt-spare-"))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
