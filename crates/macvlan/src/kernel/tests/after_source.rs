//! A link a source talked on (a DHCP client) was set up before its exchange with the settings
//! of a link with no address yet: apply then writes only the settings its addresses add and
//! does not set the link up a second time (each is a system call on a DHCP attach's path).

use super::{Call, acquired, block_on, on_one_link, parents, request, world};
use crate::{NetworkSpec, plan::plan, wire::DefaultRouted, wire::wire, wiring::Wiring};

#[test]
fn apply_after_a_source_writes_only_new_settings_and_sets_the_link_up_once() {
    on_one_link(|fake, wiring, planned| {
        let name = &wiring.link.name;
        let before = wire(planned, &[], DefaultRouted::default());
        block_on(wiring.up_for_source(&before)).unwrap();
        let first = fake.take_calls();
        assert_eq!(ups(&first), 1, "{first:?}");
        let ipv6_off = format!("net.ipv6.conf.{name}.disable_ipv6=1");
        assert_eq!(
            settings(&first),
            std::slice::from_ref(&ipv6_off),
            "{first:?}"
        );

        let wired = wire(
            planned,
            &acquired("10.1.0.5/24", None),
            DefaultRouted::default(),
        );
        block_on(wiring.apply(&wired, Some(&before))).unwrap();
        let calls = fake.take_calls();
        assert_eq!(ups(&calls), 0, "set up again: {calls:?}");
        assert_eq!(
            settings(&calls),
            [format!("net.ipv4.conf.{name}.arp_notify=1")],
            "only the address's setting is new: {calls:?}"
        );
        assert!(
            calls.iter().any(|c| matches!(c, Call::AddAddress { .. })),
            "{calls:?}"
        );

        // Without `before` (a source that ran before the link was made), everything is sent.
        block_on(wiring.apply(&wired, None)).unwrap();
        let calls = fake.take_calls();
        assert_eq!(ups(&calls), 1, "{calls:?}");
        assert_eq!(settings(&calls).len(), 2, "{calls:?}");
        assert!(settings(&calls).contains(&ipv6_off), "{calls:?}");
    });
}

/// A DHCP network's link always gets an IPv4 lease: `arp_notify` is among the settings written
/// before the exchange, and the apply after it writes none.
#[test]
fn a_dhcp_links_settings_are_all_written_before_the_exchange() {
    let spec = NetworkSpec {
        name: "lan".into(),
        driver: "macvlan".into(),
        options: vec!["parent=eth0".into()],
        ipam_driver: "dhcp".into(),
        ..Default::default()
    };
    let nets = [spec
        .validate(format!("{:0>64}", "lan"), "2026-12-05T00:00:00Z".into())
        .unwrap()];
    let w = world();
    let req = request(&nets, &[None], &w.definitions);
    let plan = plan(&req).unwrap();
    let planned = &plan.networks[0];
    let fake = parents();
    let parent = fake.state.borrow().host[0].clone();
    let mut link = parent.clone();
    link.index = 40;
    link.name.clone_from(&planned.link.name);
    let name = link.name.clone();
    let wiring = Wiring {
        kernel: &fake,
        link: &link,
        parent: &parent,
        planned,
    };
    let before = wire(planned, &[], DefaultRouted::default());
    block_on(wiring.up_for_source(&before)).unwrap();
    let first = fake.take_calls();
    let arp_notify = format!("net.ipv4.conf.{name}.arp_notify=1");
    assert!(settings(&first).contains(&arp_notify), "{first:?}");
    let wired = wire(
        planned,
        &acquired("10.1.0.5/24", None),
        DefaultRouted::default(),
    );
    block_on(wiring.apply(&wired, Some(&before))).unwrap();
    let calls = fake.take_calls();
    assert_eq!(settings(&calls), Vec::<String>::new(), "{calls:?}");
    assert!(
        calls.iter().any(|c| matches!(c, Call::AddAddress { .. })),
        "{calls:?}"
    );
}

/// How many times the calls set a link up.
fn ups(calls: &[Call]) -> usize {
    calls
        .iter()
        .filter(|c| matches!(c, Call::Up { .. }))
        .count()
}

/// Every sysctl the calls wrote.
fn settings(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Sysctls(written) => Some(written.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}
