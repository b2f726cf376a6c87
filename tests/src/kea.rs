//! Kea (`kea-dhcp4`, Debian's `kea-dhcp4-server`) started by a test inside a namespace it made,
//! on one of its links, with a config the test writes: timers of seconds, the lease file and
//! the log in the test's temp dir. Killed on drop; the package's own service is never used.

use std::path::PathBuf;

use serde_json::json;

use crate::{
    TestNetns,
    server::{Server, temp_dir},
};

/// What the test's Kea serves.
#[derive(Debug, Clone)]
pub struct KeaConfig {
    /// The link it listens on, in its namespace.
    pub interface: String,
    /// `ADDR/PREFIX`.
    pub subnet: String,
    /// `FIRST - LAST`.
    pub pool: String,
    /// Option 3.
    pub router: String,
    /// Option 121 as raw hex (RFC 3442's encoding: `100A05C0A85B01` is 10.5.0.0/16 via
    /// 192.168.91.1), if any: Kea 2.2 has no definition of its own for the option.
    pub routes_hex: Option<String>,
    /// Seconds.
    pub valid_lifetime: u32,
    /// T1, seconds.
    pub renew_timer: u32,
    /// T2, seconds.
    pub rebind_timer: u32,
}

/// One row of Kea's memfile (CSV) lease file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeaLease {
    pub address: String,
    pub hwaddr: String,
    pub client_id: String,
    pub valid_lifetime: u64,
    pub hostname: String,
    /// The lease's state: 0 default, 1 declined, 2 expired-reclaimed.
    pub state: u8,
}

/// A running `kea-dhcp4`.
#[derive(Debug)]
pub struct Kea {
    server: Server,
}

impl Kea {
    /// Starts Kea in `ns` with `config`, and waits until it serves (its log says so), 10 s
    /// at most.
    pub fn start(ns: &TestNetns, config: &KeaConfig) -> Self {
        let dir = temp_dir("omt-kea-");
        Self::start_in(dir, ns, config)
    }

    /// Stops Kea (a server down), keeping its lease file; [`Kea::start_again`] starts it again
    /// on it.
    pub fn stop(self) -> tempfile::TempDir {
        self.server.stop()
    }

    /// Starts Kea again on the lease file of a Kea [`stop`](Kea::stop)ped: a server back up,
    /// which knows the leases it gave.
    pub fn start_again(dir: tempfile::TempDir, ns: &TestNetns, config: &KeaConfig) -> Self {
        Self::start_in(dir, ns, config)
    }

    fn start_in(dir: tempfile::TempDir, ns: &TestNetns, config: &KeaConfig) -> Self {
        let mut option_data = vec![json!({"name": "routers", "data": config.router})];
        if let Some(routes) = &config.routes_hex {
            option_data.push(json!({"code": 121, "csv-format": false, "data": routes}));
        }
        let conf = json!({
            "Dhcp4": {
                "interfaces-config": {"interfaces": [config.interface], "dhcp-socket-type": "raw"},
                "lease-database": {
                    "type": "memfile",
                    "persist": true,
                    "name": dir.path().join("leases4.csv"),
                    "lfc-interval": 0
                },
                "valid-lifetime": config.valid_lifetime,
                "renew-timer": config.renew_timer,
                "rebind-timer": config.rebind_timer,
                // Keep the client's hostname (option 12) in the lease.
                "ddns-send-updates": false,
                "ddns-replace-client-name": "never",
                "subnet4": [{
                    "id": 1,
                    "subnet": config.subnet,
                    "pools": [{"pool": config.pool}],
                    "option-data": option_data
                }],
                // Debug level 45 (Kea's "basic data" trace): the least at which Kea 2.2 logs
                // each packet received with its type and client (`DHCP4_PACKET_RECEIVED`, which
                // [`Kea::received`] counts); at 40 it logs only `DHCP4_BUFFER_RECEIVED`, which
                // names neither.
                "loggers": [{
                    "name": "kea-dhcp4",
                    "severity": "DEBUG",
                    "debuglevel": 45,
                    "output_options": [{"output": dir.path().join("kea.log")}]
                }]
            }
        });
        let conf_path = dir.path().join("kea-dhcp4.conf");
        std::fs::write(&conf_path, serde_json::to_vec_pretty(&conf).unwrap()).unwrap();
        let dir_path = dir.path().to_path_buf();
        let server = Server::start(
            ns,
            dir,
            "kea-dhcp4",
            "kea.log",
            "DHCP4_STARTED",
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
        self.server.dir().join("leases4.csv")
    }

    /// Every row of the lease file, in order (Kea appends one per change; a row with a valid
    /// lifetime of 0 is a lease removed).
    pub fn rows(&self) -> Vec<KeaLease> {
        let text = std::fs::read_to_string(self.lease_file()).unwrap_or_default();
        text.lines()
            .skip(1)
            .filter_map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                Some(KeaLease {
                    address: f.first()?.to_string(),
                    hwaddr: f.get(1)?.to_string(),
                    client_id: f.get(2)?.to_string(),
                    valid_lifetime: f.get(3)?.parse().ok()?,
                    hostname: f.get(8)?.to_string(),
                    state: f.get(9).and_then(|s| s.parse().ok()).unwrap_or(0),
                })
            })
            .collect()
    }

    /// The lease Kea holds for `address` now: its last row, unless that row removed it.
    pub fn lease(&self, address: &str) -> Option<KeaLease> {
        self.rows()
            .into_iter()
            .rfind(|row| row.address == address)
            .filter(|row| row.valid_lifetime > 0)
    }

    /// Whether Kea holds `address` as declined (a client's DHCPDECLINE: no client's, kept out of
    /// its pool for its probation period).
    pub fn declined(&self, address: &str) -> bool {
        self.lease(address).is_some_and(|row| row.state == 1)
    }

    /// How many times Kea's log shows a packet of `kind` (`DHCPREQUEST`, `DHCPRELEASE`, …)
    /// received: its `DHCP4_PACKET_RECEIVED` lines, which name the type as `KIND (type N)`.
    /// Panics if Kea logged buffers received but no packet line (a log level that hides them
    /// would make every count 0, and a "none received" check unable to fail).
    pub fn received(&self, kind: &str) -> usize {
        self.packets_received()
            .iter()
            .filter(|line| line.contains(&format!(": {kind} (type ")))
            .count()
    }

    /// Kea's `DHCP4_PACKET_RECEIVED` lines so far (each names the client's MAC as
    /// `[hwtype=1 MAC]`, its `cid=[…]`, the transaction `tid=0x…` and the packet's type).
    pub fn packets_received(&self) -> Vec<String> {
        let log = self.log();
        let packets: Vec<String> = log
            .lines()
            .filter(|line| line.contains("DHCP4_PACKET_RECEIVED"))
            .map(str::to_owned)
            .collect();
        let buffers = log
            .lines()
            .filter(|line| line.contains("DHCP4_BUFFER_RECEIVED"))
            .count();
        assert!(
            buffers == 0 || !packets.is_empty(),
            "Kea logged {buffers} buffers received but no DHCP4_PACKET_RECEIVED: its debug \
             level hides the packets"
        );
        packets
    }
}
