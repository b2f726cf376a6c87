use std::path::PathBuf;

use serde_json::Value;

use crate::{run, run_ok, unique};

/// A network namespace made by the test (`ip netns add`), deleted on drop by its owner.
#[derive(Debug)]
pub struct TestNetns {
    pub name: String,
    owned: bool,
}

impl TestNetns {
    pub fn new(prefix: &str) -> Self {
        let name = unique(prefix);
        run_ok("ip", &["netns", "add", &name]);
        let ns = Self { name, owned: true };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The same namespace, for another holder that must not delete it.
    pub fn shared(&self) -> Self {
        Self {
            name: self.name.clone(),
            owned: false,
        }
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// Runs `f` on a thread that entered this namespace (sockets `f` opens stay in it; the
    /// caller's thread never leaves its own).
    pub fn inside<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        use std::os::fd::AsFd;
        let file = std::fs::File::open(self.path()).unwrap();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                    f()
                })
                .join()
                .unwrap()
        })
    }

    /// Runs the future `f` makes on a current-thread runtime on a thread inside this namespace
    /// (see [`Self::inside`]): netlink-core's `Handle::current()` is this namespace's there.
    pub fn block_on_inside<F>(&self, f: impl FnOnce() -> F + Send) -> F::Output
    where
        F: Future,
        F::Output: Send,
    {
        self.inside(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f())
        })
    }

    /// Whether one ping from inside this namespace (busybox's, the host has none) gets an answer
    /// within 2 seconds.
    pub fn ping(&self, target: &str) -> bool {
        let net = format!("--net={}", self.path().display());
        run(
            "nsenter",
            &[&net, "/bin/busybox", "ping", "-c", "1", "-W", "2", target],
        )
        .status
        .success()
    }

    /// `ip -n NAME ARGS…`, which must succeed.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        run_ok("ip", &full)
    }

    /// The kernel's view of one link (`ip -j -d link show`), or `None` if it does not exist.
    pub fn link(&self, name: &str) -> Option<Value> {
        let out = run(
            "ip",
            &["-n", &self.name, "-j", "-d", "link", "show", "dev", name],
        );
        if !out.status.success() {
            return None;
        }
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        list.as_array().and_then(|l| l.first()).cloned()
    }

    /// Every link in the namespace (tests only: a test netns holds a handful).
    pub fn links(&self) -> Vec<Value> {
        let out = self.ip(&["-j", "-d", "link", "show"]);
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The global addresses of a link, as `ADDR/PREFIX`.
    pub fn addresses(&self, link: &str) -> Vec<String> {
        let out = self.ip(&["-j", "addr", "show", "dev", link, "scope", "global"]);
        let list: Value = serde_json::from_str(&out).unwrap();
        list[0]["addr_info"]
            .as_array()
            .map(|infos| {
                // iproute2 prints addresses filtered out by `scope` as empty objects.
                infos
                    .iter()
                    .filter_map(|i| Some(format!("{}/{}", i["local"].as_str()?, i["prefixlen"])))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Writes `/proc/sys/KEY` inside the namespace (KEY with slashes: `net/ipv4/conf/x/y`).
    pub fn sysctl(&self, key: &str, value: &str) {
        run_ok(
            "nsenter",
            &[
                &format!("--net={}", self.path().display()),
                "sh",
                "-c",
                &format!("echo {value} > /proc/sys/{key}"),
            ],
        );
    }

    /// Reads `/proc/sys/KEY` inside the namespace.
    pub fn sysctl_value(&self, key: &str) -> String {
        run_ok(
            "nsenter",
            &[
                &format!("--net={}", self.path().display()),
                "cat",
                &format!("/proc/sys/{key}"),
            ],
        )
        .trim()
        .to_owned()
    }

    /// The destinations of the routes through `link` that the kernel did not add itself (IPv4
    /// and IPv6, sorted): a host link's routes to containers.
    pub fn routes_via(&self, link: &str) -> Vec<String> {
        let mut out = Vec::new();
        for family in ["-4", "-6"] {
            let text = self.ip(&[family, "-j", "route", "show", "dev", link]);
            let routes: Value = serde_json::from_str(&text).unwrap();
            for route in routes.as_array().into_iter().flatten() {
                if route["protocol"] != "kernel" {
                    out.extend(route["dst"].as_str().map(str::to_owned));
                }
            }
        }
        out.sort();
        out
    }

    /// The routes of the namespace's main table, IPv4 or IPv6.
    pub fn routes(&self, v6: bool) -> Vec<Value> {
        let family = if v6 { "-6" } else { "-4" };
        let out = self.ip(&[family, "-j", "route", "show"]);
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        if self.owned {
            let _ = run("ip", &["netns", "del", &self.name]);
        }
    }
}
