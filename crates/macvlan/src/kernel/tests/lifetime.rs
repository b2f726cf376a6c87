//! A lease's lifetime reaches the kernel (review 27, finding 7): an address a lease bounds is
//! added with the lease's time as its valid and preferred lifetime, so the kernel takes it off
//! by itself when nobody renews it; added again with a new lifetime it is extended, not
//! refused; an address of no lease has none.

use std::time::Duration;

use super::{Call, acquired, block_on, on_one_link};
use crate::{source::Acquired, wire::DefaultRouted, wire::wire};

#[test]
fn a_leased_address_is_added_with_the_leases_lifetime_and_extended() {
    on_one_link(|fake, wiring, planned| {
        let add = |lifetime| Call::AddAddress {
            link: wiring.link.name.clone(),
            address: "10.1.0.5/24".parse().unwrap(),
            lifetime,
        };
        // A lease of 600 s: the address carries it.
        let leased = vec![Acquired {
            lifetime: Some(Duration::from_secs(600)),
            ..acquired("10.1.0.5/24", None).remove(0)
        }];
        let wired = wire(planned, &leased, DefaultRouted::default());
        block_on(wiring.apply(&wired, None)).unwrap();
        let calls = fake.take_calls();
        assert_eq!(calls[0], add(Some(Duration::from_secs(600))), "{calls:?}");
        // Added again with a renewed lifetime: taken, not refused as there already.
        let renewed = vec![Acquired {
            lifetime: Some(Duration::from_secs(900)),
            ..leased[0].clone()
        }];
        let wired = wire(planned, &renewed, DefaultRouted::default());
        block_on(wiring.apply(&wired, None)).unwrap();
        assert_eq!(fake.take_calls()[0], add(Some(Duration::from_secs(900))));
        // A static address has no lifetime.
        let wired = wire(
            planned,
            &acquired("10.1.0.5/24", None),
            DefaultRouted::default(),
        );
        assert!(wired.lifetimes.is_empty());
        assert_eq!(wired.lifetime_of(&"10.1.0.5/24".parse().unwrap()), None);
    });
}
