//! A CNI spec driver of our own, behaving as libcni does: it runs the plugin (`oci-macvlan`
//! with no arguments) inside the LAN's host namespace with only the `CNI_*` variables and the
//! network config on stdin, caches ADD's result per container and interface, and replays it as
//! `prevResult` for CHECK and DEL.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::{Value, json};

use crate::{ContainerProcess, Lan, Outcome, binary};

/// Drives the plugin for one CNI network (a conflist of one plugin) naming `network`.
#[derive(Debug)]
pub struct CniDriver<'a> {
    lan: &'a Lan,
    /// The config's `cniVersion`.
    pub version: String,
    /// Our `network` key.
    pub network: String,
    cache: HashMap<(String, String), Value>,
}

/// One container interface, as the runtime names it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'p> {
    pub id: &'p str,
    /// `CNI_NETNS`; `None` leaves it unset (a DEL after the namespace is gone).
    pub netns: Option<&'p Path>,
    pub ifname: &'p str,
}

impl<'a> CniDriver<'a> {
    pub fn new(lan: &'a Lan, network: &str, version: &str) -> Self {
        Self {
            lan,
            version: version.to_owned(),
            network: network.to_owned(),
            cache: HashMap::new(),
        }
    }

    /// The network config libcni would write: the conflist's name and version, our keys.
    pub fn config(&self) -> Value {
        json!({
            "cniVersion": self.version,
            "name": format!("cni-{}", self.network),
            "type": "oci-macvlan",
            "network": self.network,
            "configDir": self.lan.config_dir(),
            "stateDir": self.lan.state_dir(),
        })
    }

    /// Runs the plugin with exactly `env` and `stdin`.
    pub fn exec_raw(&self, env: &[(&str, &str)], stdin: &[u8]) -> Outcome {
        self.exec_raw_with(&binary(), env, stdin)
    }

    /// Runs the plugin at `binary` (a failpoints build, say) with exactly `env` and `stdin`.
    pub fn exec_raw_with(&self, binary: &Path, env: &[(&str, &str)], stdin: &[u8]) -> Outcome {
        let mut child = Command::new("nsenter")
            .arg(format!("--net={}", self.lan.host.path().display()))
            .arg(binary)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        // The plugin stops reading past its bound: a broken pipe is its answer.
        let _ = input.write_all(stdin);
        drop(input);
        let out = child.wait_with_output().unwrap();
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `command` for `target` with `CNI_ARGS` `args` and `config`; the parsed stdout, as
    /// `Ok` on exit 0 (`Null` when it printed nothing), as `Err` (a CNI error, checked for its
    /// keys) otherwise.
    pub fn exec(
        &self,
        command: &str,
        target: Target<'_>,
        args: &str,
        config: &Value,
    ) -> Result<Value, Value> {
        parse_outcome(&self.run(&binary(), &[], command, target, args, config))
    }

    /// Runs `command` for `target` as [`CniDriver::exec`] does, with the plugin at `binary`
    /// and the variables `extra` beside the `CNI_*` ones; the plugin's outcome as it is (a
    /// killed plugin has code -1 and may have printed nothing).
    pub fn run(
        &self,
        binary: &Path,
        extra: &[(&str, &str)],
        command: &str,
        target: Target<'_>,
        args: &str,
        config: &Value,
    ) -> Outcome {
        let netns = target.netns.map(|p| p.display().to_string());
        let mut env = vec![
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", target.id),
            ("CNI_IFNAME", target.ifname),
            ("CNI_PATH", "/usr/lib/cni:/opt/cni/bin"),
        ];
        if let Some(netns) = &netns {
            env.push(("CNI_NETNS", netns));
        }
        if !args.is_empty() {
            env.push(("CNI_ARGS", args));
        }
        env.extend_from_slice(extra);
        self.exec_raw_with(binary, &env, config.to_string().as_bytes())
    }

    /// GC (1.1.0) keeping only `valid` (container id, interface) pairs.
    pub fn gc(&self, valid: &[(&str, &str)]) -> Result<Value, Value> {
        let mut config = self.config();
        config["cni.dev/valid-attachments"] = valid
            .iter()
            .map(|(id, ifname)| json!({"containerID": id, "ifname": ifname}))
            .collect();
        let env = [("CNI_COMMAND", "GC"), ("CNI_PATH", "/usr/lib/cni")];
        parse_outcome(&self.exec_raw(&env, config.to_string().as_bytes()))
    }

    /// ADD; its result is cached for CHECK and DEL, and must be in the config's version.
    pub fn add(&mut self, target: Target<'_>, args: &str) -> Result<Value, Value> {
        let result = self.exec("ADD", target, args, &self.config())?;
        assert_eq!(result["cniVersion"], json!(self.version), "{result}");
        self.cache.insert(
            (target.id.to_owned(), target.ifname.to_owned()),
            result.clone(),
        );
        Ok(result)
    }

    /// The config with the cached result of ADD as `prevResult`, if there is one.
    fn with_prev(&self, target: Target<'_>) -> Value {
        let mut config = self.config();
        if let Some(prev) = self
            .cache
            .get(&(target.id.to_owned(), target.ifname.to_owned()))
        {
            config["prevResult"] = prev.clone();
        }
        config
    }

    /// CHECK, with ADD's result as `prevResult`.
    pub fn check(&self, target: Target<'_>) -> Result<(), Value> {
        self.exec("CHECK", target, "", &self.with_prev(target))
            .map(drop)
    }

    /// DEL, with ADD's result as `prevResult`; the cached result is dropped when it succeeds,
    /// as libcni does.
    pub fn del(&mut self, target: Target<'_>) -> Result<(), Value> {
        self.exec("DEL", target, "", &self.with_prev(target))?;
        self.cache
            .remove(&(target.id.to_owned(), target.ifname.to_owned()));
        Ok(())
    }

    /// STATUS, with the driver's config.
    pub fn status(&self, target: Target<'_>) -> Result<Value, Value> {
        self.exec("STATUS", target, "", &self.config())
    }

    /// VERSION.
    pub fn version_info(&self) -> Value {
        let out = self.exec_raw(
            &[("CNI_COMMAND", "VERSION")],
            json!({"cniVersion": self.version}).to_string().as_bytes(),
        );
        parse_outcome(&out).unwrap()
    }
}

/// A container attached by the hook to a network as `hooked` (a process of its own, the
/// bundle runc gives the hook at createRuntime), beside the CNI containers of a test.
#[derive(Debug)]
pub struct Hooked {
    process: ContainerProcess,
}

impl Hooked {
    /// Starts the container's process and runs the hook for it on `network`.
    pub fn attach(lan: &Lan, network: &str) -> Self {
        let process = ContainerProcess::start();
        lan.cli_ok(
            &["hook"],
            &lan.pid_bundle(
                "hooked",
                &[("oci-macvlan.networks", network)],
                process.pid(),
                "creating",
            ),
        );
        Self { process }
    }

    /// The container's process.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Kills the container's process and runs the hook's poststop for it.
    pub fn stop(self, lan: &Lan) {
        self.process.kill();
        lan.cli_ok(
            &["hook"],
            r#"{"ociVersion":"1.0.2","id":"hooked","status":"stopped"}"#,
        );
    }
}

/// A runtime's CNI dirs under `dir`: `cni-bin` holding only the binary under test as
/// `oci-macvlan`, and `cni-conf` one conflist, `file`, for CNI network `network` naming the
/// oci-macvlan network of the same name with the LAN's config and state dirs. `(bin, conf)`.
pub fn plugin_dirs(lan: &Lan, dir: &Path, network: &str, file: &str) -> (PathBuf, PathBuf) {
    let (bin, conf) = (dir.join("cni-bin"), dir.join("cni-conf"));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&conf).unwrap();
    std::os::unix::fs::symlink(binary(), bin.join("oci-macvlan")).unwrap();
    let conflist = json!({
        "cniVersion": "1.0.0",
        "name": network,
        "plugins": [{
            "type": "oci-macvlan",
            "network": network,
            "configDir": lan.config_dir(),
            "stateDir": lan.state_dir(),
        }],
    });
    std::fs::write(conf.join(file), conflist.to_string()).unwrap();
    (bin, conf)
}

/// `ifname` `eth0` of container `id` in the namespace at `netns`.
pub fn target<'p>(id: &'p str, netns: &'p Path) -> Target<'p> {
    Target {
        id,
        netns: Some(netns),
        ifname: "eth0",
    }
}

/// The `(container id, IPv4 address)` pairs `inspect` lists on `network`, sorted.
pub fn leases(lan: &Lan, network: &str) -> Vec<(String, String)> {
    let inspect = lan.inspect(network);
    let mut out: Vec<(String, String)> = inspect[0]["Containers"]
        .as_object()
        .map(|c| {
            c.values()
                .map(|e| {
                    (
                        e["Name"].as_str().unwrap_or_default().to_owned(),
                        e["IPv4Address"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Stdout as CNI defines it: a result (or nothing) on success; on failure an error with
/// `cniVersion`, a numeric `code` and a `msg`, and the same line on stderr.
pub fn parse_outcome(out: &Outcome) -> Result<Value, Value> {
    if out.code == 0 {
        if out.stdout.trim().is_empty() {
            return Ok(Value::Null);
        }
        return Ok(serde_json::from_str(&out.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}): {}", out.stdout)));
    }
    let error: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "a failed plugin's stdout is not a CNI error ({err}): {}{}",
            out.stdout, out.stderr
        )
    });
    assert!(error["code"].is_u64(), "{error}");
    assert!(error["cniVersion"].is_string(), "{error}");
    let msg = error["msg"].as_str().unwrap();
    assert!(
        out.stderr.contains(msg),
        "stderr {:?} lacks {msg:?}",
        out.stderr
    );
    Err(error)
}
