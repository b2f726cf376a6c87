use std::{
    fs,
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::{Lan, cni::plugin_dirs, runc::busybox_rootfs};

/// Podman with its own storage, run root and hooks directory under the LAN's temporary dir,
/// running inside the LAN's host namespace. Every container is removed on drop.
///
/// This machine needs the cgroupfs manager, explicit ulimits (no CAP_SYS_RESOURCE) and runc
/// (crun refuses the host's hybrid cgroup layout); `--rootfs` avoids pulling an image.
#[derive(Debug)]
pub struct Podman {
    host_netns: PathBuf,
    dir: PathBuf,
    /// Read the system's hooks directories (what an installed package put there) instead of
    /// [`Podman::hooks_dir`].
    system_hooks: bool,
    /// A containers.conf of the test's own (`CONTAINERS_CONF`), for the CNI backend.
    containers_conf: Option<PathBuf>,
    /// A process holding a private mount namespace, in the LAN's host network namespace, that
    /// every podman command enters: with the CNI backend, libcni keeps its result cache in
    /// the fixed `/var/lib/cni`, which a tmpfs there covers. Killed on drop.
    mount_ns: Option<Child>,
}

impl Podman {
    pub fn new(lan: &Lan) -> Self {
        let dir = lan.tmp().join("podman");
        busybox_rootfs(&dir.join("rootfs"));
        Self {
            host_netns: lan.host.path(),
            dir,
            system_hooks: false,
            containers_conf: None,
            mount_ns: None,
        }
    }

    /// Like [`Podman::new`], with podman's CNI backend (`network_backend = "cni"` in a
    /// containers.conf of the test's own): its plugin dir holds only the binary under test as
    /// `oci-macvlan`, and its config dir one conflist, CNI network `network`, naming the
    /// oci-macvlan network of the same name with the LAN's config and state dirs.
    pub fn with_cni(lan: &Lan, network: &str) -> Self {
        let mut podman = Self::new(lan);
        let (bin, conf) = plugin_dirs(lan, &podman.dir, network, &format!("{network}.conflist"));
        let containers_conf = podman.dir.join("containers.conf");
        let toml = |path: &std::path::Path| format!("{:?}", path.display().to_string());
        fs::write(
            &containers_conf,
            format!(
                "[network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [{}]\n\
                 network_config_dir = {}\n",
                toml(&bin),
                toml(&conf)
            ),
        )
        .unwrap();
        podman.containers_conf = Some(containers_conf);
        podman.mount_ns = Some(Self::private_var_lib(&podman.host_netns));
        podman
    }

    /// A process in a private mount namespace (inside the host network namespace `netns`)
    /// whose `/var/lib` is a tmpfs holding an empty `cni`, and `/run/netns` a tmpfs; returns
    /// once that is mounted.
    fn private_var_lib(netns: &std::path::Path) -> Child {
        // Killed with the test's thread, should the test itself be killed before its drop.
        let mut holder = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "nsenter"])
            .arg(format!("--net={}", netns.display()))
            .args(["unshare", "--mount", "--propagation", "private", "sh", "-c"])
            // Podman as root makes its containers' namespaces in `/run/netns`: a tmpfs of its
            // own there keeps them off the host's.
            .arg(
                "mount -t tmpfs omt-var-lib /var/lib && mkdir /var/lib/cni \
                 && mount -t tmpfs omt-netns /run/netns && exec sleep 3600",
            )
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mounts = format!("/proc/{}/mounts", holder.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fs::read_to_string(&mounts).is_ok_and(|m| m.contains("omt-netns /run/netns ")) {
            if let Some(status) = holder.try_wait().unwrap() {
                panic!("cannot make a private /var/lib for podman: {status}");
            }
            assert!(Instant::now() < deadline, "no private /var/lib for podman");
            thread::sleep(Duration::from_millis(20));
        }
        holder
    }

    /// Like [`Podman::new`], but podman reads the system's hooks directories
    /// (`/usr/share/containers/oci/hooks.d`, `/etc/containers/oci/hooks.d`), as it does when a
    /// user runs it.
    pub fn with_system_hooks(lan: &Lan) -> Self {
        let mut podman = Self::new(lan);
        podman.system_hooks = true;
        podman
    }

    pub fn hooks_dir(&self) -> PathBuf {
        self.dir.join("hooks.d")
    }

    fn podman(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        if let Some(conf) = &self.containers_conf {
            cmd.env("CONTAINERS_CONF", conf);
        }
        match &self.mount_ns {
            Some(holder) => cmd
                .arg(format!("--target={}", holder.id()))
                .args(["--mount", "--net"]),
            None => cmd.arg(format!("--net={}", self.host_netns.display())),
        };
        cmd.arg("podman")
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args([
                "--storage-driver",
                "vfs",
                "--runtime",
                "/usr/sbin/runc",
                "--cgroup-manager",
                "cgroupfs",
            ])
            .stdin(Stdio::null());
        if !self.system_hooks {
            cmd.arg("--hooks-dir").arg(self.hooks_dir());
        }
        cmd
    }

    /// `podman ARGS…`: (success, stdout + stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String) {
        let out = self.podman().args(args).output().unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    /// `podman run -d --network none` of `sleep` on the busybox rootfs, with annotations.
    pub fn start(&self, name: &str, annotations: &[(&str, &str)]) -> Result<(), String> {
        self.start_on(name, &["--network", "none"], annotations)
    }

    /// `podman run -d` of `sleep` on the busybox rootfs with network flags `network`
    /// (`--network lan --ip …`) and annotations.
    pub fn start_on(
        &self,
        name: &str,
        network: &[&str],
        annotations: &[(&str, &str)],
    ) -> Result<(), String> {
        let rootfs = self.dir.join("rootfs").display().to_string();
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(network);
        args.extend([
            "--cap-add",
            "NET_RAW",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
        ]);
        let pairs: Vec<String> = annotations
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for pair in &pairs {
            args.extend(["--annotation", pair]);
        }
        args.extend(["--rootfs", &rootfs, "sleep", "3600"]);
        match self.run(&args) {
            (true, _) => Ok(()),
            (false, out) => Err(out),
        }
    }

    pub fn exec(&self, name: &str, args: &[&str]) -> (bool, String) {
        let mut full = vec!["exec", name];
        full.extend(args);
        self.run(&full)
    }

    /// `podman stop -t 0`: podman tears the container's networks down (CNI DEL) and keeps it.
    pub fn stop(&self, name: &str) -> Result<(), String> {
        match self.run(&["stop", "-t", "0", name]) {
            (true, _) => Ok(()),
            (false, out) => Err(out),
        }
    }

    /// `podman inspect --format FORMAT NAME`, trimmed.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        let (ok, out) = self.run(&["inspect", "--format", format, name]);
        assert!(ok, "podman inspect {name}: {out}");
        out.trim().to_owned()
    }

    /// `podman rm -f -t 0`: stops the container (podman runs the poststop hooks) and removes it.
    pub fn rm(&self, name: &str) -> Result<(), String> {
        match self.run(&["rm", "-f", "-t", "0", name]) {
            (true, _) => Ok(()),
            (false, out) => Err(out),
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-a", "-f", "-t", "0"]);
        if let Some(mut holder) = self.mount_ns.take() {
            let _ = holder.kill();
            let _ = holder.wait();
        }
    }
}
