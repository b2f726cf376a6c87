use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{Lan, binary};

/// A root filesystem holding only a static busybox and the applets the tests use.
pub fn busybox_rootfs(dir: &Path) {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static is installed");
    for applet in ["sh", "sleep", "ping", "ip", "cat"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
}

/// An OCI runtime the tests drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Runc,
    /// Run in a private mount namespace with cgroup2 mounted and its cgroup manager disabled:
    /// this machine's `/sys/fs/cgroup` is not what crun expects.
    Crun,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Self::Runc => "runc",
            Self::Crun => "crun",
        }
    }
}

/// A bundle: a busybox rootfs and a `config.json` (from `runc spec`) that lists the oci-macvlan
/// hook at an attach stage (`createRuntime` or the deprecated `prestart`) and at poststop, with
/// the given annotations.
#[derive(Debug)]
pub struct Bundle {
    pub dir: PathBuf,
}

impl Bundle {
    pub fn new(lan: &Lan, id: &str, annotations: &[(&str, &str)]) -> Self {
        Self::with_stage(lan, id, annotations, "createRuntime")
    }

    pub fn with_stage(lan: &Lan, id: &str, annotations: &[(&str, &str)], stage: &str) -> Self {
        let dir = lan.tmp().join(format!("runc-bundle-{id}"));
        busybox_rootfs(&dir.join("rootfs"));
        let spec = Command::new("runc")
            .args(["spec", "--bundle"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            spec.status.success(),
            "runc spec: {}",
            String::from_utf8_lossy(&spec.stderr)
        );
        let path = dir.join("config.json");
        let mut config: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["sleep", "3600"]);
        for set in ["bounding", "effective", "permitted"] {
            config["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_NET_RAW"));
        }
        let annotations: serde_json::Map<String, Value> = annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        config["annotations"] = Value::Object(annotations);
        let mut args = vec!["oci-macvlan".to_owned()];
        args.extend(lan.dir_args());
        args.push("hook".into());
        let hook = json!({"path": binary(), "args": args, "timeout": 10});
        config["hooks"] = json!({stage: [hook.clone()], "poststop": [hook]});
        fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        Self { dir }
    }
}

/// A container started inside the LAN's host namespace; killed and deleted on drop.
#[derive(Debug)]
pub struct Container {
    pub id: String,
    runtime: Runtime,
    host_netns: PathBuf,
    root: PathBuf,
    deleted: bool,
}

impl Container {
    /// `RUNTIME run -d`, from inside the host namespace. Returns the runtime's stderr on failure.
    pub fn start(lan: &Lan, runtime: Runtime, id: &str, bundle: &Bundle) -> Result<Self, String> {
        let root = lan.tmp().join(format!("{}-root", runtime.name()));
        let log = lan.tmp().join(format!("{}-{id}.stderr", runtime.name()));
        let container = Self {
            id: id.to_owned(),
            runtime,
            host_netns: lan.host.path(),
            root,
            deleted: false,
        };
        let status = container
            .runc()
            .args(["run", "-d", "--bundle"])
            .arg(&bundle.dir)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .status()
            .unwrap();
        if status.success() {
            Ok(container)
        } else {
            Err(fs::read_to_string(&log).unwrap_or_default())
        }
    }

    /// The runtime, with its state root, inside the host namespace; arguments follow.
    fn runc(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.host_netns.display()));
        match self.runtime {
            Runtime::Runc => {
                cmd.arg("runc");
            }
            Runtime::Crun => {
                cmd.args([
                    "unshare",
                    "-m",
                    "sh",
                    "-c",
                    "umount -l /sys/fs/cgroup 2>/dev/null; mount -t cgroup2 none /sys/fs/cgroup && \
                     exec crun --cgroup-manager=disabled \"$@\"",
                    "crun",
                ]);
            }
        }
        cmd.arg("--root").arg(&self.root);
        cmd
    }

    /// Runs a command in the container; returns (success, stdout + stderr).
    pub fn exec(&self, args: &[&str]) -> (bool, String) {
        self.exec_with(&[], args)
    }

    /// As [`Self::exec`], with `flags` for `RUNTIME exec` (`--cap CAP_NET_RAW`, say).
    pub fn exec_with(&self, flags: &[&str], args: &[&str]) -> (bool, String) {
        let out = self
            .runc()
            .arg("exec")
            .args(flags)
            .arg(&self.id)
            .args(args)
            .output()
            .unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    /// Kills the container and deletes it, which runs the poststop hooks. Returns runc's stderr
    /// if `delete` fails.
    pub fn stop(mut self) -> Result<(), String> {
        self.deleted = true;
        self.kill_and_delete()
    }

    fn kill_and_delete(&self) -> Result<(), String> {
        let _ = self.runc().args(["kill", &self.id, "KILL"]).output();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let out = self.runc().args(["state", &self.id]).output().unwrap();
            let state: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            if state["status"] != "running" {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = self
            .runc()
            .args(["delete", "--force", &self.id])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.deleted {
            let _ = self.kill_and_delete();
        }
    }
}
