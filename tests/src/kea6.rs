//! Kea's DHCPv6 server (`kea-dhcp6`, Debian's `kea-dhcp6-server`) started by a test inside a
//! namespace it made, on one of its links, with a config the test writes: lifetimes and timers
//! of seconds, the lease file and the log in the test's temp dir. Killed on drop; the
//! package's own service is never used.

use std::path::PathBuf;

use serde_json::json;

use crate::{
    TestNetns,
    server::{Server, temp_dir},
};

/// What the test's Kea serves.
#[derive(Debug, Clone)]
pub struct Kea6Config {
    /// The link it listens on, in its namespace (with a usable link-local address).
    pub interface: String,
    /// `PREFIX/LEN`.
    pub subnet: String,
    /// `FIRST-LAST`.
    pub pool: String,
    /// Seconds.
    pub preferred_lifetime: u32,
    /// Seconds.
    pub valid_lifetime: u32,
    /// T1, seconds.
    pub renew_timer: u32,
    /// T2, seconds.
    pub rebind_timer: u32,
    /// An address of the interface Kea also listens on and offers for unicast (option 12).
    pub unicast: Option<String>,
}

/// One row of Kea's memfile (CSV) lease6 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kea6Lease {
    pub address: String,
    /// The client's DUID, `xx:xx:…`.
    pub duid: String,
    pub valid_lifetime: u64,
    pub preferred_lifetime: u64,
    pub iaid: u32,
    pub hostname: String,
}

/// A running `kea-dhcp6`.
#[derive(Debug)]
pub struct Kea6 {
    server: Server,
}

impl Kea6 {
    /// Starts Kea in `ns` with `config`, and waits until it serves (its log says so), 10 s at
    /// most.
    pub fn start(ns: &TestNetns, config: &Kea6Config) -> Self {
        let dir = temp_dir("omt-kea6-");
        Self::start_in(dir, ns, config, None)
    }

    /// [`Kea6::start`] under a server identifier of its own (a DUID-EN of `identifier`, hex):
    /// a server that answers to the identifier a lease names although it has forgotten the
    /// lease (its lease file is new).
    pub fn start_as(ns: &TestNetns, config: &Kea6Config, identifier: &str) -> Self {
        let dir = temp_dir("omt-kea6-");
        Self::start_in(dir, ns, config, Some(identifier))
    }

    /// Stops Kea (a server down), keeping its lease file; [`Kea6::start_again`] starts it
    /// again on it.
    pub fn stop(self) -> tempfile::TempDir {
        self.server.stop()
    }

    /// Starts Kea again on the lease file of a Kea [`stop`](Kea6::stop)ped: a server back up
    /// (with a new server identifier: it keeps none), which knows the leases it gave.
    pub fn start_again(dir: tempfile::TempDir, ns: &TestNetns, config: &Kea6Config) -> Self {
        Self::start_in(dir, ns, config, None)
    }

    fn start_in(
        dir: tempfile::TempDir,
        ns: &TestNetns,
        config: &Kea6Config,
        identifier: Option<&str>,
    ) -> Self {
        // Not written to the package's data directory.
        let server_id = match identifier {
            Some(identifier) => json!({
                "type": "EN", "enterprise-id": 2495, "identifier": identifier, "persist": false
            }),
            None => json!({"type": "LLT", "persist": false}),
        };
        let (interface, option_data) = match &config.unicast {
            Some(address) => (
                format!("{}/{address}", config.interface),
                vec![json!({"name": "unicast", "data": address, "always-send": true})],
            ),
            None => (config.interface.clone(), Vec::new()),
        };
        let conf = json!({
            "Dhcp6": {
                "interfaces-config": {"interfaces": [interface]},
                "lease-database": {
                    "type": "memfile",
                    "persist": true,
                    "name": dir.path().join("leases6.csv"),
                    "lfc-interval": 0
                },
                "server-id": server_id,
                "preferred-lifetime": config.preferred_lifetime,
                "valid-lifetime": config.valid_lifetime,
                "renew-timer": config.renew_timer,
                "rebind-timer": config.rebind_timer,
                // Keep the client's FQDN (option 39) in the lease.
                "ddns-send-updates": false,
                "ddns-replace-client-name": "never",
                "subnet6": [{
                    "id": 1,
                    "subnet": config.subnet,
                    "interface": config.interface,
                    "pools": [{"pool": config.pool}],
                    "option-data": option_data
                }],
                "loggers": [{
                    "name": "kea-dhcp6",
                    "severity": "DEBUG",
                    "debuglevel": 40,
                    "output_options": [{"output": dir.path().join("kea.log")}]
                }]
            }
        });
        let conf_path = dir.path().join("kea-dhcp6.conf");
        std::fs::write(&conf_path, serde_json::to_vec_pretty(&conf).unwrap()).unwrap();
        let dir_path = dir.path().to_path_buf();
        let server = Server::start(
            ns,
            dir,
            "kea-dhcp6",
            "kea.log",
            "DHCP6_STARTED",
            |command| {
                command
                    .arg("-c")
                    .arg(&conf_path)
                    .env("KEA_PIDFILE_DIR", &dir_path)
                    .env("KEA_LOCKFILE_DIR", &dir_path);
            },
        );
        Self { server }
    }

    /// Kea's log so far.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// The lease file's path.
    pub fn lease_file(&self) -> PathBuf {
        self.server.dir().join("leases6.csv")
    }

    /// Every row of the lease file, in order (Kea appends one per change; a row with a valid
    /// lifetime of 0 is a lease removed).
    pub fn rows(&self) -> Vec<Kea6Lease> {
        let text = std::fs::read_to_string(self.lease_file()).unwrap_or_default();
        // address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,
        // prefix_len,fqdn_fwd,fqdn_rev,hostname,…
        text.lines()
            .skip(1)
            .filter_map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                Some(Kea6Lease {
                    address: f.first()?.to_string(),
                    duid: f.get(1)?.to_string(),
                    valid_lifetime: f.get(2)?.parse().ok()?,
                    preferred_lifetime: f.get(5)?.parse().ok()?,
                    iaid: f.get(7)?.parse().ok()?,
                    hostname: f.get(11)?.to_string(),
                })
            })
            .collect()
    }

    /// The lease Kea holds for `address` now: its last row, unless that row removed it.
    pub fn lease(&self, address: &str) -> Option<Kea6Lease> {
        self.rows()
            .into_iter()
            .rfind(|row| row.address == address)
            .filter(|row| row.valid_lifetime > 0)
    }

    /// How many lines of Kea's log carry the message id `id` (`DHCP6_LEASE_RENEW`: a lease
    /// renewed, …).
    pub fn logged(&self, id: &str) -> usize {
        self.log()
            .lines()
            .filter(|line| line.split_whitespace().any(|word| word == id))
            .count()
    }
}
