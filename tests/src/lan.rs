use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use serde_json::Value;

use crate::{Outcome, TestNetns, binary};

/// A simulated host on a LAN: a "host" namespace whose veth end `lan0` is the macvlan parent,
/// and a "router" namespace on the other end holding `GATEWAY` on `rtr`. Config and state dirs
/// are temporary. Everything goes away on drop.
#[derive(Debug)]
pub struct Lan {
    pub host: TestNetns,
    pub router: TestNetns,
    dirs: tempfile::TempDir,
}

impl Lan {
    pub const PARENT: &'static str = "lan0";
    pub const SUBNET: &'static str = "192.168.77.0/24";
    pub const GATEWAY: &'static str = "192.168.77.1";

    pub fn new() -> Self {
        Self::with(Self::PARENT, &format!("{}/24", Self::GATEWAY))
    }

    /// A LAN whose host's parent is `parent` and whose router holds `gateway` (`IP/PREFIX`):
    /// for a script written for a real host (`-o parent=eth0`, the LAN's own router).
    pub fn with(parent: &str, gateway: &str) -> Self {
        let host = TestNetns::new("omt-host-");
        let router = TestNetns::new("omt-rtr-");
        host.ip(&[
            "link",
            "add",
            parent,
            "type",
            "veth",
            "peer",
            "name",
            "rtr",
            "netns",
            &router.name,
        ]);
        host.ip(&["link", "set", parent, "up"]);
        router.ip(&["link", "set", "rtr", "up"]);
        router.ip(&["addr", "add", gateway, "dev", "rtr"]);
        Self {
            host,
            router,
            dirs: Self::temp_dirs(),
        }
    }

    /// Another host on the same LAN segment: its own namespace with its own `lan0`, its own
    /// config and state dirs, and this LAN's router. On first use the router's `rtr` becomes a
    /// port of a bridge `br0`, which takes over the gateway address: the segment's switch.
    pub fn add_host(&self) -> Lan {
        let gateway = format!("{}/24", Self::GATEWAY);
        if self.router.link("br0").is_none() {
            self.router.ip(&["link", "add", "br0", "type", "bridge"]);
            self.router.ip(&["addr", "del", &gateway, "dev", "rtr"]);
            self.router.ip(&["link", "set", "rtr", "master", "br0"]);
            self.router.ip(&["addr", "add", &gateway, "dev", "br0"]);
            self.router.ip(&["link", "set", "br0", "up"]);
        }
        let host = TestNetns::new("omt-host-");
        let port = crate::unique("p");
        host.ip(&[
            "link",
            "add",
            Self::PARENT,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &self.router.name,
        ]);
        host.ip(&["link", "set", Self::PARENT, "up"]);
        self.router.ip(&["link", "set", &port, "master", "br0"]);
        self.router.ip(&["link", "set", &port, "up"]);
        Lan {
            host,
            router: self.router.shared(),
            dirs: Self::temp_dirs(),
        }
    }

    fn temp_dirs() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("omt-dirs-")
            .tempdir()
            .unwrap()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dirs.path().join("etc")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dirs.path().join("run")
    }

    pub fn tmp(&self) -> &Path {
        self.dirs.path()
    }

    /// The global flags every invocation gets, as a runtime's hook `args` would pass them.
    pub fn dir_args(&self) -> Vec<String> {
        vec![
            "--config-dir".into(),
            self.config_dir().display().to_string(),
            "--state-dir".into(),
            self.state_dir().display().to_string(),
        ]
    }

    /// Starts `oci-macvlan ARGS…` inside the host namespace with an empty environment (as
    /// podman runs poststop hooks), stdin and stderr piped, stdout piped or discarded. `nsenter`
    /// execs the binary: the child's pid is the binary's.
    pub fn spawn_cli(&self, args: &[&str], stdout: bool) -> Child {
        self.spawn_with(&binary(), &[], args, stdout)
    }

    /// [`Lan::spawn_cli`] of another build of the binary (`program`), with `env` as its only
    /// environment.
    pub fn spawn_with(
        &self,
        program: &Path,
        env: &[(&str, &str)],
        args: &[&str],
        stdout: bool,
    ) -> Child {
        Command::new("nsenter")
            .arg(format!("--net={}", self.host.path().display()))
            .arg(program)
            .args(self.dir_args())
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(if stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs `oci-macvlan ARGS…` (see [`Lan::spawn_cli`]) with `stdin`.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Outcome {
        self.cli_with(&binary(), &[], args, stdin.as_bytes())
    }

    /// Runs `program ARGS…` (see [`Lan::spawn_with`]) with `stdin`, which may be any bytes. A
    /// process killed by a signal has `code` -1.
    pub fn cli_with(
        &self,
        program: &Path,
        env: &[(&str, &str)],
        args: &[&str],
        stdin: &[u8],
    ) -> Outcome {
        let mut child = self.spawn_with(program, env, args, true);
        let mut input = child.stdin.take().unwrap();
        // A hook may stop reading early (input too large, or killed): a broken pipe is its answer.
        let _ = input.write_all(stdin);
        drop(input);
        let out = child.wait_with_output().unwrap();
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `oci-macvlan ARGS…` once per entry of `stdins`, all at once: every process is
    /// started first and blocks on stdin until all run, then all are fed and awaited.
    pub fn cli_together(&self, args: &[&str], stdins: &[String]) -> Vec<Outcome> {
        let mut children: Vec<Child> = stdins.iter().map(|_| self.spawn_cli(args, true)).collect();
        for (child, stdin) in children.iter_mut().zip(stdins) {
            let mut input = child.stdin.take().unwrap();
            let _ = input.write_all(stdin.as_bytes());
        }
        children
            .into_iter()
            .map(|child| {
                let out = child.wait_with_output().unwrap();
                Outcome {
                    code: out.status.code().unwrap_or(-1),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                }
            })
            .collect()
    }

    /// Like [`Lan::cli`], and panics unless it exits 0.
    pub fn cli_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.cli(args, stdin);
        assert_eq!(
            out.code,
            0,
            "oci-macvlan {} failed: {}",
            args.join(" "),
            out.stderr
        );
        out.stdout
    }

    /// `network create NAME --subnet SUBNET --gateway GATEWAY -o parent=lan0 EXTRA…`
    pub fn create_network(&self, name: &str, extra: &[&str]) {
        let parent = format!("parent={}", Self::PARENT);
        let mut args = vec![
            "network",
            "create",
            "--subnet",
            Self::SUBNET,
            "--gateway",
            Self::GATEWAY,
            "-o",
            &parent,
        ];
        args.extend_from_slice(extra);
        args.push(name);
        self.cli_ok(&args, "");
    }

    /// `network inspect NAME` as JSON.
    pub fn inspect(&self, name: &str) -> Value {
        serde_json::from_str(&self.cli_ok(&["network", "inspect", name], "")).unwrap()
    }

    /// The containers holding a lease of the store on a network, as `inspect` reports them (an
    /// address; a DHCP network also lists a container whose lease ended, without one).
    pub fn leased(&self, network: &str) -> usize {
        self.inspect(network)[0]["Containers"]
            .as_object()
            .map_or(0, |c| {
                c.values()
                    .filter(|e| e["IPv4Address"] != "" || e["IPv6Address"] != "")
                    .count()
            })
    }

    /// The `(IPv4Address, FIELD)` pairs of the containers `inspect` lists on `network`, sorted
    /// (a field missing is empty).
    pub fn inspected(&self, network: &str, field: &str) -> Vec<(String, String)> {
        let text = |e: &Value, key: &str| e[key].as_str().unwrap_or_default().to_owned();
        let mut out: Vec<(String, String)> = self.inspect(network)[0]["Containers"]
            .as_object()
            .map(|c| {
                c.values()
                    .map(|e| (text(e, "IPv4Address"), text(e, field)))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Endpoint records left in the state dir.
    pub fn records(&self) -> Vec<String> {
        match std::fs::read_dir(self.state_dir().join("endpoints")) {
            Ok(dir) => {
                let mut names: Vec<String> = dir
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                names
            }
            Err(_) => Vec::new(),
        }
    }

    /// Lock files left in the state dir.
    pub fn locks(&self) -> Vec<String> {
        match std::fs::read_dir(self.state_dir().join("locks")) {
            Ok(dir) => dir
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The hook journal (`<state-dir>/hooks.jsonl`), one JSON value per line.
    pub fn journal(&self) -> Vec<Value> {
        std::fs::read_to_string(self.state_dir().join("hooks.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Panics, saying what was left, unless nothing of any container is left: no lease on
    /// `networks`, no endpoint record, no lock file, no link in the host namespace but `lo`, the
    /// parent and the networks' host links (`ha-…`, the networks' own), no route through those,
    /// and `verify` passes. `context` names the case in the message.
    pub fn assert_no_residue(&self, networks: &[&str], context: &str) {
        for net in networks {
            assert_eq!(self.leased(net), 0, "{context}: a lease is left on {net}");
        }
        assert_eq!(
            self.records(),
            Vec::<String>::new(),
            "{context}: records left"
        );
        assert_eq!(
            self.locks(),
            Vec::<String>::new(),
            "{context}: lock files left"
        );
        let (host_links, others): (Vec<String>, Vec<String>) = self
            .host_link_names()
            .into_iter()
            .partition(|name| name.starts_with("ha-"));
        assert_eq!(
            others,
            ["lo", Self::PARENT],
            "{context}: links left in the host namespace"
        );
        for link in host_links {
            assert_eq!(
                self.host.routes_via(&link),
                Vec::<String>::new(),
                "{context}: host routes left via {link}"
            );
        }
        let verify = self.cli(&["verify"], "");
        assert_eq!(
            verify.code, 0,
            "{context}: verify: {}{}",
            verify.stdout, verify.stderr
        );
    }

    /// The names of the links in the host namespace: `["lo", "lan0"]` unless something leaked.
    pub fn host_link_names(&self) -> Vec<String> {
        self.host
            .links()
            .iter()
            .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
            .collect()
    }

    /// The kernel's view of the parent, without counters: what "untouched" compares.
    pub fn parent_view(&self) -> Value {
        let mut link = self.host.link(Self::PARENT).expect("parent exists");
        if let Some(obj) = link.as_object_mut() {
            obj.remove("stats64");
            obj.remove("stats");
        }
        link
    }

    /// Writes a bundle whose `config.json` has these annotations and names `netns` (always a
    /// test namespace: the state carries no pid, so nothing can point at a real namespace);
    /// returns the state JSON a runtime would pass at `status`.
    pub fn fake_bundle(
        &self,
        id: &str,
        annotations: &[(&str, &str)],
        netns: &Path,
        status: &str,
    ) -> String {
        self.bundle_state(id, annotations, Some(netns), None, status)
    }

    /// A bundle whose config has no namespace path, and the state of its container with `pid`:
    /// the hook finds the namespace through `/proc/PID/ns/net`, as for a runc container.
    pub fn pid_bundle(
        &self,
        id: &str,
        annotations: &[(&str, &str)],
        pid: u32,
        status: &str,
    ) -> String {
        self.bundle_state(id, annotations, None, Some(pid), status)
    }

    fn bundle_state(
        &self,
        id: &str,
        annotations: &[(&str, &str)],
        netns: Option<&Path>,
        pid: Option<u32>,
        status: &str,
    ) -> String {
        let bundle = self.tmp().join(format!("bundle-{id}"));
        std::fs::create_dir_all(&bundle).unwrap();
        let annotations: serde_json::Map<String, Value> = annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        let namespace = match netns {
            Some(path) => serde_json::json!({"type": "network", "path": path}),
            None => serde_json::json!({"type": "network"}),
        };
        let config = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "annotations": annotations,
            "linux": {"namespaces": [namespace]},
        });
        std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
        let mut state = serde_json::json!({
            "ociVersion": "1.0.2",
            "id": id,
            "status": status,
            "bundle": bundle,
        });
        if let Some(pid) = pid {
            state["pid"] = pid.into();
        }
        state.to_string()
    }
}

impl Default for Lan {
    fn default() -> Self {
        Self::new()
    }
}

impl Lan {
    /// The pids of this LAN's DHCP keepers (their command line names its state dir), those of
    /// container `id` when given (`--container ID` on it).
    pub fn keepers(&self, id: Option<&str>) -> Vec<u32> {
        let state = self.state_dir().to_string_lossy().into_owned();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                args.contains(&&b"dhcp-keeper"[..])
                    && args.contains(&state.as_bytes())
                    && id.is_none_or(|id| args.contains(&id.as_bytes()))
            })
            .collect()
    }
}

/// Before its dirs go, the keepers still running on them are killed and waited for: one in
/// the middle of a renewal would otherwise write in a dir being removed (a keeper makes no dir
/// again, but its write can race the removal), and none outlives its test. Killing a keeper
/// loses nothing (the store holds all it knows). None is seen twice 20 ms apart before the
/// dirs go: a keeper just started may not have its command line yet (a child before its
/// `execve` has the hook's). One started later still (a packet socket's closer child execs it
/// once the socket's release is over) finds its state dir gone and makes nothing.
impl Drop for Lan {
    fn drop(&mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut none_before = false;
        while std::time::Instant::now() < deadline {
            let left = self.keepers(None);
            if left.is_empty() && none_before {
                break;
            }
            none_before = left.is_empty();
            for pid in left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
