//! Privileged tier: networks shared through an etcd cluster, as in `etcd.rs`: three members that
//! go on without one and fail cleanly without quorum, and TLS with client certificates (a wrong
//! CA is a clear error). The setup is shared with `etcd.rs` (`oci_macvlan_tests::etcd_network`).

#![allow(clippy::unwrap_used)]

use oci_macvlan_tests::etcd_network::{
    ANN, NET, attach, create_shared, detach, etcd_leases, on_ok,
};
use oci_macvlan_tests::{Etcd, Lan, TestNetns, binary, privileged};

#[privileged]
fn three_members_go_on_without_one_and_fail_cleanly_without_quorum() {
    let lan = Lan::new();
    let mut etcd = Etcd::start(&lan, 3);
    etcd.reach_from(&lan, "192.168.77.250");
    create_shared(&lan, &etcd.endpoints(), &[]);
    let ns: Vec<TestNetns> = (0..3).map(|_| TestNetns::new("omt-q-")).collect();
    let out = attach(&lan, "hostA", "q0", &ns[0], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // The first endpoint's member dies: the others answer, attaches and detaches go on.
    etcd.kill(0);
    let out = attach(&lan, "hostA", "q1", &ns[1], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = detach(&lan, "hostA", "q0", &ns[0]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // One member of three left: no quorum. The attach fails within etcd_timeout, exit 1, one
    // line naming the endpoints, and leaves nothing.
    etcd.kill(1);
    let out = attach(&lan, "hostA", "q2", &ns[2], &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "lease store etcd {} unavailable",
            etcd.endpoints()
        )),
        "{}",
        out.stderr
    );
    assert!(ns[2].link("eth0").is_none());
    assert_eq!(lan.records().len(), 1, "only q1's record");
    assert_eq!(lan.locks().len(), 1, "only q1's lock");

    // Quorum back: the attach works, and nothing of the failed one is left in etcd.
    etcd.restart(0);
    etcd.restart(1);
    let out = attach(&lan, "hostA", "q2", &ns[2], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut holders: Vec<String> = etcd_leases(&etcd).into_iter().map(|l| l.2).collect();
    holders.sort();
    assert_eq!(holders, ["q1", "q2"]);
    assert!(on_ok(&lan, "hostA", &["verify"], "").starts_with("ok: 2 leases"));
    for (i, id) in [(1, "q1"), (2, "q2")] {
        let out = detach(&lan, "hostA", id, &ns[i]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    assert_eq!(etcd_leases(&etcd), []);
}

/// A CA, and a certificate signed by it for `cn` (with `ext`, an openssl extension line);
/// returns (cert, key) paths in `dir`.
fn sign(dir: &std::path::Path, ca: &str, name: &str, ext: &str) -> (String, String) {
    let path = |file: String| dir.join(file).display().to_string();
    let (key, csr, cert, extfile) = (
        path(format!("{name}.key")),
        path(format!("{name}.csr")),
        path(format!("{name}.pem")),
        path(format!("{name}.ext")),
    );
    std::fs::write(&extfile, ext).unwrap();
    oci_macvlan_tests::run_ok(
        "openssl",
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    oci_macvlan_tests::run_ok(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &path(format!("{ca}.pem")),
            "-CAkey",
            &path(format!("{ca}.key")),
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "1",
            "-extfile",
            &extfile,
        ],
    );
    (cert, key)
}

fn make_ca(dir: &std::path::Path, name: &str) -> String {
    let path = |ext: &str| dir.join(format!("{name}.{ext}")).display().to_string();
    oci_macvlan_tests::run_ok(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &path("key"),
            "-out",
            &path("pem"),
            "-days",
            "1",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    path("pem")
}

#[privileged]
fn tls_with_client_certificates_and_a_wrong_ca_is_a_clear_error() {
    let lan = Lan::new();
    let dir = tempfile::tempdir().unwrap();
    let ca = make_ca(dir.path(), "ca");
    let other_ca = make_ca(dir.path(), "other-ca");
    // etcd's own gateway dials its gRPC side with the member's certificate: both usages.
    let (server, server_key) = sign(
        dir.path(),
        "ca",
        "etcd",
        &format!(
            "subjectAltName=IP:{}\nextendedKeyUsage=serverAuth,clientAuth\n",
            Lan::GATEWAY
        ),
    );
    let (client, client_key) = sign(dir.path(), "ca", "client", "extendedKeyUsage=clientAuth\n");
    let etcd = Etcd::start_tls(
        &lan,
        std::path::Path::new(&server),
        std::path::Path::new(&server_key),
        std::path::Path::new(&ca),
    );
    etcd.reach_from(&lan, "192.168.77.250");
    let tls = |ca: &str| {
        [
            format!("etcd_cacert={ca}"),
            format!("etcd_cert={client}"),
            format!("etcd_key={client_key}"),
        ]
    };
    let good = tls(&ca);
    create_shared(
        &lan,
        &etcd.endpoints(),
        &[
            "--ipam-opt",
            &good[0],
            "--ipam-opt",
            &good[1],
            "--ipam-opt",
            &good[2],
        ],
    );
    let ns = TestNetns::new("omt-tls-");
    let out = attach(&lan, "hostA", "t1", &ns, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(etcd_leases(&etcd).len(), 1);
    let out = detach(&lan, "hostA", "t1", &ns);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(etcd_leases(&etcd), []);

    // The same cluster trusted through the wrong CA: the attach fails, saying why, and leaves
    // nothing.
    on_ok(&lan, "hostA", &["network", "rm", NET], "");
    let bad = tls(&other_ca);
    create_shared(
        &lan,
        &etcd.endpoints(),
        &[
            "--ipam-opt",
            &bad[0],
            "--ipam-opt",
            &bad[1],
            "--ipam-opt",
            &bad[2],
        ],
    );
    let out = attach(&lan, "hostA", "t2", &ns, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("unavailable"), "{}", out.stderr);
    assert!(out.stderr.contains("UnknownIssuer"), "{}", out.stderr);
    assert!(ns.link("eth0").is_none() && lan.records().is_empty());
}

/// The hook finds its TLS helper beside its own executable or in `../libexec/oci-macvlan/`,
/// never elsewhere: a copy of the binary alone in a directory fails an https network's attach at
/// once, naming where it looked, and leaves nothing; with the helper in the Debian layout's
/// place it goes on to the member (here none listens).
#[privileged]
fn an_https_network_without_the_tls_helper_fails_naming_where_it_looked() {
    let lan = Lan::new();
    let dir = tempfile::tempdir().unwrap();
    let ca = make_ca(dir.path(), "ca");
    create_shared(
        &lan,
        "https://192.168.77.250:2379",
        &[
            "--ipam-opt",
            &format!("etcd_cacert={ca}"),
            "--ipam-opt",
            "etcd_timeout=500ms",
        ],
    );
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let alone = bin.join("oci-macvlan");
    std::fs::copy(binary(), &alone).unwrap();
    let ns = TestNetns::new("omt-tlsh-");
    let state = lan.fake_bundle("t1", &[(ANN, NET)], &ns.path(), "creating");
    let hook = |lan: &Lan| {
        lan.cli_with(
            &alone,
            &[],
            &["--host-id", "hostA", "hook"],
            state.as_bytes(),
        )
    };
    let out = hook(&lan);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    let root = dir.path().display();
    assert!(
        out.stderr.contains(&format!(
            "oci-macvlan-tls helper, not found (looked for {root}/bin/oci-macvlan-tls and \
             {root}/libexec/oci-macvlan/oci-macvlan-tls)"
        )),
        "{}",
        out.stderr
    );
    assert!(ns.link("eth0").is_none() && lan.records().is_empty());

    let libexec = dir.path().join("libexec/oci-macvlan");
    std::fs::create_dir_all(&libexec).unwrap();
    std::fs::copy(
        binary().with_file_name("oci-macvlan-tls"),
        libexec.join("oci-macvlan-tls"),
    )
    .unwrap();
    let out = hook(&lan);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        !out.stderr.contains("not found") && out.stderr.contains("https://192.168.77.250:2379: "),
        "{}",
        out.stderr
    );
    assert!(ns.link("eth0").is_none() && lan.records().is_empty());
}
