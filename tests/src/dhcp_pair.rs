//! What the DHCP clients' tests (v4's `dhcp.rs`, v6's `dhcp6*.rs`) share: a server's and a
//! client's namespace joined by a veth pair, and a hostile server run beside an exchange.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use crate::TestNetns;

/// A LAN namespace (`lan_prefix…`) holding `srv`, the server's link, and a client namespace
/// (`client_prefix…`) holding `cl0`, its peer: both down, without addresses.
pub fn server_and_client(lan_prefix: &str, client_prefix: &str) -> (TestNetns, TestNetns) {
    let lan = TestNetns::new(lan_prefix);
    let client = TestNetns::new(client_prefix);
    lan.ip(&[
        "link",
        "add",
        "srv",
        "type",
        "veth",
        "peer",
        "name",
        "cl0",
        "netns",
        &client.name,
    ]);
    (lan, client)
}

/// Runs `serve` (a hostile server, on a thread of its own until the flag it is given is set)
/// beside `exchange`, started `settle` after it (its socket bound by then): what `exchange`
/// gave, how long it took, and what `serve` gave.
pub fn beside_hostile<T, S: Send>(
    settle: Duration,
    serve: impl FnOnce(&AtomicBool) -> S + Send,
    exchange: impl FnOnce() -> T,
) -> (T, Duration, S) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let server = scope.spawn(|| serve(&stop));
        std::thread::sleep(settle);
        let start = Instant::now();
        let result = exchange();
        let took = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        (result, took, server.join().unwrap())
    })
}
