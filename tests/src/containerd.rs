//! containerd 1.6 started by a test, and `ctr` against it, for `ctr run --cni`.
//!
//! ctr finds CNI through fixed paths only (go-cni's defaults: conflists in `/etc/cni/net.d`,
//! the first one sorted; plugins in `/opt/cni/bin`, which Debian's build moves to
//! `/usr/lib/cni`; libcni's result cache in `/var/lib/cni`), and containerd's shims keep their
//! sockets and runc's state under `/run/containerd`. So containerd runs in a private mount
//! namespace of its own, inside the LAN's host network namespace: a tmpfs over `/run` and
//! `/var/lib`, and the test's conflist and plugin dirs bound over `/etc/cni/net.d` and
//! `/usr/lib/cni`. `ctr` enters the same namespaces. The host's mounts are never touched.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::{Lan, cni::plugin_dirs, runc::busybox_rootfs};

/// The image the tests run, imported from an OCI layout the test builds from busybox-static.
pub const IMAGE: &str = "docker.io/omt/busybox:1";
/// The containerd namespace (not a Linux one) the tests use.
const NAMESPACE: &str = "omt";

/// A containerd in the LAN's host network namespace and a private mount namespace; its root,
/// state and socket under the LAN's temporary dir. Killed on drop, with every process left in
/// its mount namespace (the shims).
#[derive(Debug)]
pub struct Containerd {
    daemon: Child,
    dir: PathBuf,
}

impl Containerd {
    /// Starts containerd with a conflist for CNI network `network` naming the oci-macvlan
    /// network of the same name (with the LAN's config and state dirs), and the binary under
    /// test as the only plugin; waits until it answers.
    pub fn start(lan: &Lan, network: &str) -> Self {
        let dir = lan.tmp().join("containerd");
        let (bin, conf) = plugin_dirs(lan, &dir, network, "10-omt.conflist");
        let config = dir.join("config.toml");
        fs::write(
            &config,
            format!(
                "version = 2\nroot = {root:?}\nstate = {state:?}\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = {sock:?}\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = {opt:?}\n",
                root = dir.join("root").display().to_string(),
                state = dir.join("state").display().to_string(),
                sock = dir.join("containerd.sock").display().to_string(),
                opt = dir.join("opt").display().to_string(),
            ),
        )
        .unwrap();
        let script = format!(
            "set -e\n\
             mount -t tmpfs omt-run /run\n\
             mount -t tmpfs omt-var-lib /var/lib\n\
             mount --bind {conf:?} /etc/cni/net.d\n\
             mount --bind {bin:?} /usr/lib/cni\n\
             if [ -d /opt/cni/bin ]; then mount --bind {bin:?} /opt/cni/bin; fi\n\
             exec containerd --config {config:?} --log-level warn\n",
            conf = conf.display().to_string(),
            bin = bin.display().to_string(),
            config = config.display().to_string(),
        );
        let log = fs::File::create(dir.join("containerd.log")).unwrap();
        // Killed with the test's thread, should the test itself be killed before its drop.
        let daemon = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "nsenter"])
            .arg(format!("--net={}", lan.host.path().display()))
            .args(["unshare", "--mount", "--propagation", "private", "sh", "-c"])
            .arg(script)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let containerd = Self { daemon, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if containerd.ctr(&["version"]).0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not answer: {}",
                containerd.log()
            );
            thread::sleep(Duration::from_millis(100));
        }
        containerd
    }

    /// What containerd logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// `ctr ARGS…` in containerd's namespaces (its network namespace: the plugin it runs
    /// needs the LAN's parent), against its socket, in the tests' containerd namespace.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--target={}", self.daemon.id()))
            .args(["--mount", "--net", "ctr", "--address"])
            .arg(self.dir.join("containerd.sock"))
            .args(["--namespace", NAMESPACE])
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// `ctr ARGS…`: (success, stdout + stderr).
    pub fn ctr(&self, args: &[&str]) -> (bool, String) {
        let out = self.command(args).output().unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    /// Builds [`IMAGE`] (one layer: the busybox rootfs) as an OCI layout archive and imports it
    /// into the native snapshotter.
    pub fn import_busybox(&self) {
        let layout = self.dir.join("layout");
        let blobs = layout.join("blobs/sha256");
        fs::create_dir_all(&blobs).unwrap();
        let rootfs = self.dir.join("image-rootfs");
        busybox_rootfs(&rootfs);
        let layer = self.dir.join("layer.tar");
        crate::run_ok(
            "tar",
            &[
                "--sort=name",
                "--owner=0",
                "--group=0",
                "-C",
                &rootfs.display().to_string(),
                "-cf",
                &layer.display().to_string(),
                ".",
            ],
        );
        let layer = fs::read(layer).unwrap();
        let layer = blob(&blobs, &layer);
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let config = serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["sleep", "3600"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.0]},
        });
        let config = blob(&blobs, config.to_string().as_bytes());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config.0,
                "size": config.1,
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer.0,
                "size": layer.1,
            }],
        });
        let manifest = blob(&blobs, manifest.to_string().as_bytes());
        let (base, tag) = IMAGE.rsplit_once(':').unwrap();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest.0,
                "size": manifest.1,
                "platform": {"architecture": arch, "os": "linux"},
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        });
        fs::write(layout.join("index.json"), index.to_string()).unwrap();
        fs::write(
            layout.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        let archive = self.dir.join("image.tar");
        crate::run_ok(
            "tar",
            &[
                "-C",
                &layout.display().to_string(),
                "-cf",
                &archive.display().to_string(),
                ".",
            ],
        );
        let archive = archive.display().to_string();
        let (ok, out) = self.ctr(&[
            "image",
            "import",
            "--snapshotter",
            "native",
            "--base-name",
            base,
            &archive,
        ]);
        assert!(ok, "ctr image import: {out}");
        let (ok, out) = self.ctr(&["image", "ls", "-q"]);
        assert!(ok && out.lines().any(|l| l == IMAGE), "images: {out}");
    }

    /// `ctr run --cni --rm IMAGE ID sleep 3600` in the foreground, as a user runs it: ctr
    /// runs ADD before the task starts, and DEL once the task has exited.
    pub fn run_cni(&self, id: &str) -> Child {
        self.command(&[
            "run",
            "--cni",
            "--rm",
            "--snapshotter",
            "native",
            IMAGE,
            id,
            "sleep",
            "3600",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    }

    /// `ctr run --cni -d IMAGE ID sleep 3600`: ADD, and ctr returns; no one runs DEL.
    pub fn run_cni_detached(&self, id: &str) -> (bool, String) {
        self.ctr(&[
            "run",
            "--cni",
            "-d",
            "--snapshotter",
            "native",
            IMAGE,
            id,
            "sleep",
            "3600",
        ])
    }

    /// `ctr task exec` of `args` in the task `id`: (success, stdout + stderr).
    pub fn exec(&self, id: &str, args: &[&str]) -> (bool, String) {
        let exec_id = crate::unique("x");
        let mut full = vec!["task", "exec", "--exec-id", &exec_id, id];
        full.extend_from_slice(args);
        self.ctr(&full)
    }

    /// Whether the task `id` is running.
    pub fn running(&self, id: &str) -> bool {
        let (ok, out) = self.ctr(&["task", "ls"]);
        ok && out
            .lines()
            .any(|l| l.split_whitespace().next() == Some(id) && l.contains("RUNNING"))
    }

    /// The ids of the processes in containerd's mount namespace (containerd and its shims).
    fn processes(&self) -> Vec<u32> {
        let ours = fs::read_link(format!("/proc/{}/ns/mnt", self.daemon.id()));
        let Ok(ours) = ours else { return Vec::new() };
        fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| fs::read_link(format!("/proc/{pid}/ns/mnt")).ok() == Some(ours.clone()))
            .collect()
    }
}

/// Writes `data` as a blob; its digest and size.
fn blob(dir: &Path, data: &[u8]) -> (String, usize) {
    let file = dir.join("incoming");
    fs::write(&file, data).unwrap();
    let sum = crate::run_ok("sha256sum", &[&file.display().to_string()]);
    let hex = sum.split_whitespace().next().unwrap().to_owned();
    fs::rename(&file, dir.join(&hex)).unwrap();
    (format!("sha256:{hex}"), data.len())
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let (_, tasks) = self.ctr(&["task", "ls", "-q"]);
        for task in tasks.lines().filter(|l| !l.is_empty()) {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", task]);
            let _ = self.ctr(&["task", "delete", "-f", task]);
        }
        let (_, containers) = self.ctr(&["container", "ls", "-q"]);
        for container in containers.lines().filter(|l| !l.is_empty()) {
            let _ = self.ctr(&["container", "delete", container]);
        }
        // The shims outlive containerd unless killed; each was started by this containerd,
        // in this mount namespace.
        let shims: Vec<u32> = self
            .processes()
            .into_iter()
            .filter(|&pid| pid != self.daemon.id())
            .collect();
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        for pid in shims {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        // ctr's cgroups are `/<containerd namespace>/<id>` on the host's hierarchies: the
        // tasks' are gone with them, the namespace's own is left empty (kept while another
        // test's task is in it: rmdir refuses a cgroup with children).
        // (cgroup v2: `/sys/fs/cgroup/omt`; v1: one per hierarchy, `/sys/fs/cgroup/*/omt`.)
        let root = Path::new("/sys/fs/cgroup");
        let hierarchies = fs::read_dir(root).into_iter().flatten().flatten();
        for dir in std::iter::once(root.join(NAMESPACE))
            .chain(hierarchies.map(|h| h.path().join(NAMESPACE)))
        {
            let _ = fs::remove_dir(dir);
        }
    }
}
