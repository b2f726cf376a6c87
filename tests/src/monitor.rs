use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::Lan;

/// `ip monitor OBJECTS…` (`link`, `address`, `route`) in a LAN's host namespace for the test's
/// duration: every such event there, a line each.
#[derive(Debug)]
pub struct Monitor {
    child: Child,
    log: PathBuf,
}

impl Monitor {
    /// Starts the monitor and proves it sees events (a probe veth pair, whose events
    /// [`Monitor::events`] leaves out) before a test relies on it seeing none of ours.
    pub fn start(lan: &Lan, objects: &[&str]) -> Self {
        let log = lan.tmp().join(crate::unique("host-events-"));
        let child = Command::new("ip")
            .args(["-n", &lan.host.name, "-o", "monitor"])
            .args(objects)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let monitor = Self { child, log };
        for _ in 0..50 {
            lan.host.ip(&[
                "link", "add", "probe0", "type", "veth", "peer", "name", "probe1",
            ]);
            lan.host.ip(&["link", "del", "probe0"]);
            std::thread::sleep(Duration::from_millis(20));
            if monitor.read().iter().any(|e| e.contains("probe0")) {
                return monitor;
            }
        }
        panic!("ip monitor saw no event in the host namespace");
    }

    fn read(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The events but the probe's, once the monitor has stopped.
    pub fn events(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.read()
            .into_iter()
            .filter(|e| !e.contains("probe"))
            .collect()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
