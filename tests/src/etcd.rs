//! A real etcd cluster for the tests of networks that several hosts share: its members run in
//! the LAN's router namespace (a machine of the LAN, as etcd is in the article's setup), clients
//! on the LAN's gateway address, peers on that namespace's own loopback. A fresh namespace has
//! every port free. Members are killed and their data removed on drop, also when a test fails.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::Value;

use crate::{Lan, TestNetns};

#[derive(Debug)]
struct Member {
    name: String,
    client: String,
    peer: String,
    child: Option<Child>,
}

/// `members` etcd processes forming one cluster, reachable from every host of `lan` that
/// [`Etcd::reach_from`] was called for.
#[derive(Debug)]
pub struct Etcd {
    router: PathBuf,
    members: Vec<Member>,
    dir: tempfile::TempDir,
    /// TLS: `--cert-file`, `--key-file`, `--trusted-ca-file` of every member (client URLs).
    tls: Option<[PathBuf; 3]>,
}

impl Etcd {
    /// A cluster of `members` in `lan`'s router namespace, started and healthy.
    pub fn start(lan: &Lan, members: usize) -> Self {
        Self::start_with(&lan.router, members, None)
    }

    /// [`Etcd::start`] with clients served over TLS: the member's certificate and key, and the
    /// CA that client certificates must be signed by.
    pub fn start_tls(lan: &Lan, cert: &Path, key: &Path, ca: &Path) -> Self {
        Self::start_with(
            &lan.router,
            1,
            Some([cert.to_path_buf(), key.to_path_buf(), ca.to_path_buf()]),
        )
    }

    fn start_with(router: &TestNetns, n: usize, tls: Option<[PathBuf; 3]>) -> Self {
        // tmpfs where there is one: etcd syncs its log at every write.
        let dir = tempfile::Builder::new()
            .prefix("omt-etcd-")
            .tempdir_in(if Path::new("/dev/shm").is_dir() {
                "/dev/shm"
            } else {
                "/tmp"
            })
            .unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client: format!("{scheme}://{}:{}", Lan::GATEWAY, 2379 + 10 * i),
                peer: format!("http://127.0.0.1:{}", 2380 + 10 * i),
                child: None,
            })
            .collect();
        let mut etcd = Self {
            router: router.path(),
            members,
            dir,
            tls,
        };
        for i in 0..n {
            etcd.spawn(i);
        }
        for i in 0..n {
            etcd.wait_healthy(i);
        }
        etcd
    }

    /// Gives `lan`'s host an address on the LAN (`addr`, outside every test's pools) so that
    /// its hooks reach the members.
    pub fn reach_from(&self, lan: &Lan, addr: &str) {
        lan.host
            .ip(&["addr", "add", &format!("{addr}/24"), "dev", Lan::PARENT]);
    }

    /// `etcd_endpoints=…` for `--ipam-opt`.
    pub fn endpoints(&self) -> String {
        let urls: Vec<&str> = self.members.iter().map(|m| m.client.as_str()).collect();
        urls.join(",")
    }

    fn spawn(&mut self, i: usize) {
        let cluster: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer))
            .collect();
        let member = &self.members[i];
        let data = self.dir.path().join(&member.name);
        let log =
            std::fs::File::create(self.dir.path().join(format!("{}.log", member.name))).unwrap();
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.router.display()))
            .arg("etcd")
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &member.client])
            .args(["--advertise-client-urls", &member.client])
            .args(["--listen-peer-urls", &member.peer])
            .args(["--initial-advertise-peer-urls", &member.peer])
            .args(["--initial-cluster", &cluster.join(",")])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "omt"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some([cert, key, ca]) = &self.tls {
            cmd.arg("--cert-file")
                .arg(cert)
                .arg("--key-file")
                .arg(key)
                .arg("--trusted-ca-file")
                .arg(ca)
                .arg("--client-cert-auth");
        }
        self.members[i].child = Some(cmd.spawn().expect("etcd (Debian's etcd-server) runs"));
    }

    fn wait_healthy(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.etcdctl_at(i, &["endpoint", "health"]).0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd member {i} not healthy: {}",
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The member's log, for a failure message.
    pub fn log(&self, i: usize) -> String {
        let text = std::fs::read_to_string(
            self.dir
                .path()
                .join(format!("{}.log", self.members[i].name)),
        )
        .unwrap_or_default();
        text.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    }

    /// Kills member `i` (SIGKILL) and waits for it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts member `i` again on its data, and waits until it is healthy (a member alone
    /// is not: it needs a quorum).
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_healthy(i);
    }

    fn etcdctl_at(&self, i: usize, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.router.display()))
            .arg("etcdctl")
            .arg(format!("--endpoints={}", self.members[i].client))
            .args(["--dial-timeout=1s", "--command-timeout=3s"])
            .env("ETCDCTL_API", "3");
        if let Some([cert, key, ca]) = &self.tls {
            cmd.arg(format!("--cacert={}", ca.display()))
                .arg(format!("--cert={}", cert.display()))
                .arg(format!("--key={}", key.display()));
        }
        let out = cmd.args(args).stdin(Stdio::null()).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// How many requests of gRPC method `method` (`Range`, `Txn`) member `i` has answered: its
    /// JSON gateway's requests included, which it serves through its own gRPC server.
    pub fn handled(&self, i: usize, method: &str) -> u64 {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.router.display()))
            .args(["busybox", "wget", "-q", "-O", "-"])
            .arg(format!("{}/metrics", self.members[i].client))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "metrics of member {i}");
        let needle = format!("grpc_method=\"{method}\"");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("grpc_server_handled_total{") && l.contains(&needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Every lease under the default prefix, as (key, value) with the value's JSON, read from
    /// the first member that answers.
    pub fn leases(&self) -> Vec<(String, Value)> {
        for i in 0..self.members.len() {
            if self.members[i].child.is_none() {
                continue;
            }
            let (ok, out) = self.etcdctl_at(
                i,
                &["get", "--prefix", "/oci-macvlan/leases/", "-w", "json"],
            );
            if !ok {
                continue;
            }
            let answer: Value = serde_json::from_str(&out).unwrap();
            let decode = |v: &Value| {
                let text = v.as_str().unwrap_or_default();
                String::from_utf8(STANDARD.decode(text).unwrap()).unwrap()
            };
            return answer["kvs"]
                .as_array()
                .map(|kvs| {
                    kvs.iter()
                        .map(|kv| {
                            let key = decode(&kv["key"]);
                            let value = serde_json::from_str(&decode(&kv["value"])).unwrap();
                            (key, value)
                        })
                        .collect()
                })
                .unwrap_or_default();
        }
        panic!("no etcd member answered");
    }
}

impl Etcd {
    /// `etcdctl put KEY VALUE` on the first member (a key planted by a test).
    pub fn put(&self, key: &str, value: &str) {
        let (ok, out) = self.etcdctl_at(0, &["put", "--", key, value]);
        assert!(ok, "etcdctl put {key}: {out}");
    }

    /// Every key under `prefix` and its value, as text, from the first member.
    pub fn get_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let (ok, out) = self.etcdctl_at(0, &["get", "--prefix", prefix, "-w", "json"]);
        assert!(ok, "etcdctl get {prefix}: {out}");
        let answer: Value = serde_json::from_str(&out).unwrap();
        let decode = |v: &Value| {
            let text = v.as_str().unwrap_or_default();
            String::from_utf8_lossy(&STANDARD.decode(text).unwrap()).into_owned()
        };
        answer["kvs"]
            .as_array()
            .map(|kvs| {
                kvs.iter()
                    .map(|kv| (decode(&kv["key"]), decode(&kv["value"])))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
