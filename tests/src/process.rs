use std::{
    os::unix::fs::MetadataExt,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A stand-in for a container's init: `sleep` in a network namespace of its own that dies with
/// it, as a runc container's does. Killed (and reaped) on drop.
#[derive(Debug)]
pub struct ContainerProcess {
    child: Child,
}

impl ContainerProcess {
    pub fn start() -> Self {
        let child = Command::new("unshare")
            .args(["--net", "sleep", "3600"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let process = Self { child };
        // Until `unshare` has exec'd `sleep`, the child is still in our namespace: never hand
        // its pid to a hook before then.
        let ours = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let comm = std::fs::read_to_string(format!("/proc/{}/comm", process.pid()));
            let netns = std::fs::metadata(format!("/proc/{}/ns/net", process.pid()));
            if let (Ok(comm), Ok(netns)) = (comm, netns)
                && comm.trim() == "sleep"
                && netns.ino() != ours
            {
                return process;
            }
            assert!(
                Instant::now() < deadline,
                "unshare --net sleep did not start"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills and reaps the process: its namespace, and every link in it, goes with it.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ContainerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
