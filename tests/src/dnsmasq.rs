//! dnsmasq (`/usr/sbin/dnsmasq`, Debian's `dnsmasq-base`) as a LAN's DHCP server, started by a
//! test inside a namespace it made, on one of its links, with its lease file in the test's temp
//! dir (`--dhcp-leasefile`): the server most home routers run, and the one that ignored a
//! RELEASE from 0.0.0.0 (CNI's scar). No DNS (`--port=0`); killed on drop.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use crate::{
    TestNetns,
    server::{Server, temp_dir},
};

/// One line of dnsmasq's lease file: `EXPIRY MAC IP HOSTNAME CLIENT-ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqLease {
    pub mac: String,
    pub address: String,
    pub hostname: String,
    pub client_id: String,
}

/// A running dnsmasq.
#[derive(Debug)]
pub struct Dnsmasq {
    server: Server,
}

impl Dnsmasq {
    /// Starts dnsmasq in `ns` on `interface`, leasing `first`..`last` of a /24 for `lease`
    /// (dnsmasq's syntax: `2m`), with `router` as option 3; waits until it listens, 10 s at most.
    pub fn start(
        ns: &TestNetns,
        interface: &str,
        first: &str,
        last: &str,
        router: &str,
        lease: &str,
    ) -> Self {
        Self::start_with(ns, interface, first, last, router, lease, &[])
    }

    /// [`Self::start`] with `extra` arguments for dnsmasq (a DHCPv6 `--dhcp-range=`, say).
    pub fn start_with(
        ns: &TestNetns,
        interface: &str,
        first: &str,
        last: &str,
        router: &str,
        lease: &str,
        extra: &[String],
    ) -> Self {
        let dir = temp_dir("omt-dnsmasq-");
        let leases = dir.path().join("dnsmasq.leases");
        std::fs::write(&leases, "").unwrap();
        let pid = dir.path().join("pid");
        let log = dir.path().join("log");
        let server = Server::start(
            ns,
            dir,
            "/usr/sbin/dnsmasq",
            "log",
            "DHCP, IP range",
            |cmd| {
                cmd.args([
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--port=0",
                    "--bind-interfaces",
                    "--user=root",
                    "--group=root",
                    "--log-dhcp",
                    "--dhcp-authoritative",
                ])
                .arg(format!("--interface={interface}"))
                .arg(format!("--dhcp-range={first},{last},255.255.255.0,{lease}"))
                .arg(format!("--dhcp-option=3,{router}"))
                .arg(format!("--dhcp-leasefile={}", leases.display()))
                .arg(format!("--pid-file={}", pid.display()))
                .arg(format!("--log-facility={}", log.display()))
                .args(extra);
            },
        );
        Self { server }
    }

    /// dnsmasq's log so far.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// The lease file's path.
    pub fn lease_file(&self) -> PathBuf {
        self.server.dir().join("dnsmasq.leases")
    }

    /// The leases dnsmasq's lease file holds now.
    pub fn leases(&self) -> Vec<DnsmasqLease> {
        let text = std::fs::read_to_string(self.lease_file()).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                Some(DnsmasqLease {
                    mac: f.get(1)?.to_string(),
                    address: f.get(2)?.to_string(),
                    hostname: f.get(3)?.to_string(),
                    client_id: f.get(4)?.to_string(),
                })
            })
            .collect()
    }

    /// Waits up to 3 s for the lease file to satisfy `ok` (dnsmasq writes it after it answers).
    pub fn wait_for(&self, ok: impl Fn(&[DnsmasqLease]) -> bool) -> Vec<DnsmasqLease> {
        let start = Instant::now();
        loop {
            let leases = self.leases();
            if ok(&leases) || start.elapsed() > Duration::from_secs(3) {
                return leases;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
