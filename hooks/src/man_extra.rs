//! What each man page says beyond clap's definition of its command (name, synopsis, the
//! command's long help as DESCRIPTION, options, subcommands): EXAMPLES (README.md's), EXIT
//! STATUS (README.md's table, which a test keeps equal to this one) and FILES. build.rs renders
//! them after clap_mangen's sections; the binary does not carry this module.

/// Exit codes, as README.md's *Exit codes* table gives them (code, meaning).
pub const EXIT_STATUS: &[(u8, &str)] = &[
    (0, "success, or a container without `oci-macvlan.networks`"),
    (1, "the system failed"),
    (2, "command-line usage"),
    (3, "invalid input"),
    (4, "something named does not exist"),
    (5, "conflict"),
    (6, "`verify` found inconsistencies (each listed on stdout)"),
];

/// The files a host keeps (path, what it holds).
pub const FILES: &[(&str, &str)] = &[
    (
        "/etc/oci-macvlan/networks/NAME.json",
        "network definitions (--config-dir, OCI_MACVLAN_CONFIG_DIR)",
    ),
    (
        "/run/oci-macvlan/",
        "leases, endpoint records, locks and the hook journal, on a tmpfs (--state-dir, OCI_MACVLAN_STATE_DIR)",
    ),
    (
        "/etc/containers/oci/hooks.d/oci-macvlan.json",
        "the podman hooks.d file `oci-macvlan install` writes",
    ),
    (
        "/usr/share/containers/oci/hooks.d/oci-macvlan.json",
        "the hooks.d file the Debian package installs, where podman looks by default",
    ),
];

/// The examples of the page `page` (its file name without `.1`): (what it does, the command).
pub fn examples(page: &str) -> &'static [(&'static str, &'static str)] {
    match page {
        "oci-macvlan" | "oci-macvlan-network" => &[
            (
                "Define a network on the host's LAN, start a podman container on it, look at it:",
                "oci-macvlan network create -d macvlan --subnet 192.168.50.0/24 --gateway 192.168.50.1 \\\n    --ip-range 192.168.50.128/25 -o parent=eth0 lan50\npodman run --network none --annotation oci-macvlan.networks=lan50 alpine ip addr\noci-macvlan network inspect lan50",
            ),
            (
                "List, then remove, networks:",
                "oci-macvlan network ls\noci-macvlan network rm lan50",
            ),
        ],
        "oci-macvlan-network-create" => &[
            (
                "A macvlan network on eth0, containers taking addresses from the upper half:",
                "oci-macvlan network create -d macvlan --subnet 192.168.50.0/24 --gateway 192.168.50.1 \\\n    --ip-range 192.168.50.128/25 --aux-address router2=192.168.50.2 \\\n    -o parent=eth0.50 -o macvlan_mode=bridge lan50",
            ),
            (
                "An ipvlan network (the containers share the parent's MAC):",
                "oci-macvlan network create -d ipvlan --subnet 192.168.210.0/24 --gateway 192.168.210.254 \\\n    -o parent=eth0 -o ipvlan_mode=l2 ipvlan210",
            ),
            (
                "The host reaches its containers at an address of its own on the network:",
                "oci-macvlan network create -d macvlan --subnet 192.168.50.0/24 --gateway 192.168.50.1 \\\n    -o parent=eth0 -o host_access=192.168.50.3 lan50",
            ),
            (
                "Several hosts share one address space through etcd:",
                "oci-macvlan network create -d macvlan --subnet 192.168.60.0/24 -o parent=eth0 \\\n    --ipam-opt etcd_endpoints=http://10.0.0.5:2379 lan60",
            ),
            (
                "Addresses from the LAN's own DHCP server (no --subnet needed), 5 s to answer:",
                "oci-macvlan network create -d macvlan --ipam-driver dhcp -o parent=eth0 \\\n    --ipam-opt dhcp_timeout=5s lan",
            ),
        ],
        "oci-macvlan-network-ls" => &[(
            "Every network, then only the names of those whose name is lan50:",
            "oci-macvlan network ls\noci-macvlan network ls --filter name=^lan50$ --format '{{.Name}}'",
        )],
        "oci-macvlan-network-inspect" => &[
            ("A network as JSON:", "oci-macvlan network inspect lan50"),
            (
                "Each container's name, address and MAC:",
                "oci-macvlan network inspect -f '{{range .Containers}}{{.Name}} {{.IPv4Address}} {{.MacAddress}}{{println}}{{end}}' lan50",
            ),
        ],
        "oci-macvlan-network-rm" => &[(
            "Remove two networks no container uses:",
            "oci-macvlan network rm lan50 ipvlan210",
        )],
        "oci-macvlan-network-prune" => &[(
            "Remove every unused network without asking:",
            "oci-macvlan network prune -f",
        )],
        "oci-macvlan-network-connect" => &[
            (
                "Give a runc container a leg on one more network, with a static address:",
                "oci-macvlan network connect --ip 192.168.50.20 --runtime runc lan50 web",
            ),
            (
                "A container found by its process:",
                "oci-macvlan network connect --pid 4242 lan50 web",
            ),
        ],
        "oci-macvlan-network-disconnect" => &[(
            "Take that leg away again:",
            "oci-macvlan network disconnect lan50 web",
        )],
        "oci-macvlan-hook" => &[
            (
                "In a runc or crun bundle's config.json: the annotations that opt in, and the hook at createRuntime (attach) and poststop (detach), with its dirs in its args (runtimes may clear a hook's environment):",
                "\"annotations\": { \"oci-macvlan.networks\": \"lan50\", \"oci-macvlan.ip\": \"192.168.50.10\" },\n\"hooks\": {\n  \"createRuntime\": [{ \"path\": \"/usr/bin/oci-macvlan\",\n      \"args\": [\"oci-macvlan\", \"--config-dir\", \"/etc/oci-macvlan\", \"--state-dir\", \"/run/oci-macvlan\", \"hook\"] }],\n  \"poststop\": [{ \"path\": \"/usr/bin/oci-macvlan\",\n      \"args\": [\"oci-macvlan\", \"--config-dir\", \"/etc/oci-macvlan\", \"--state-dir\", \"/run/oci-macvlan\", \"hook\"] }]\n}",
            ),
            (
                "The stage given as an argument:",
                "\"args\": [\"oci-macvlan\", \"hook\", \"poststop\"]",
            ),
        ],
        "oci-macvlan-verify" => &[(
            "Check leases, definitions and records; exit 6 lists each problem:",
            "oci-macvlan verify",
        )],
        "oci-macvlan-gc" => &[
            (
                "Take back what gone containers hold (the package's timer runs this every 15 minutes):",
                "oci-macvlan gc",
            ),
            (
                "Release the shared leases of a host gone for good:",
                "oci-macvlan gc --forget-host hostB",
            ),
        ],
        "oci-macvlan-doctor" => &[
            (
                "Check this host and the parent eth0 (with whether the LAN's DHCP servers answer):",
                "oci-macvlan doctor -o parent=eth0",
            ),
            (
                "Wait up to 10 s for the DHCP servers, or not at all:",
                "oci-macvlan doctor -o parent=eth0 -o dhcp_timeout=10s\noci-macvlan doctor -o parent=eth0 -o dhcp_timeout=0s",
            ),
        ],
        "oci-macvlan-bundle" => &[
            (
                "Wire the bundle in the current directory for the network lan50, with a static address:",
                "runc spec\noci-macvlan bundle --network lan50 --ip 192.168.50.10\nrunc run -d web",
            ),
            (
                "Two networks (eth0 and eth1), then take it all out again:",
                "oci-macvlan bundle --network lan50,lan60 ./mybundle\noci-macvlan bundle --remove ./mybundle",
            ),
        ],
        "oci-macvlan-install" => &[(
            "Write podman's hooks.d file for this binary and the default dirs:",
            "oci-macvlan install",
        )],
        "oci-macvlan-completion" => &[(
            "Bash completion for this shell:",
            "source <(oci-macvlan completion bash)",
        )],
        _ => &[],
    }
}
