//! The client's side of the TLS helper, against stand-in helpers (shell scripts) that log
//! each start and then behave as a helper whose member hangs up, or that dies mid-request.

use std::{os::unix::fs::PermissionsExt, path::Path};

use crate::EtcdConfig;

use crate::client::{Client, absent, put};

/// A helper script in `dir` that appends its pid and arguments to `dir/log`, then `body`.
fn helper(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("oci-macvlan-tls");
    let log = dir.join("log");
    let script = format!("#!/bin/sh\necho \"$$ $*\" >> {}\n{body}\n", log.display());
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn starts(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Two https endpoints reached through `helper`, the helper itself standing in for the CA.
fn client(helper: &Path, timeout_ms: u64) -> Client {
    let config = EtcdConfig {
        endpoints: vec!["https://127.0.0.1:1".into(), "https://127.0.0.1:2".into()],
        prefix: "/t".into(),
        cacert: Some(helper.to_owned()),
        cert: Some(helper.to_owned()),
        key: Some(helper.to_owned()),
        timeout_ms,
    };
    let path = helper.to_owned();
    Client::with_helper(&config, move || Ok(path)).unwrap()
}

fn write(client: &mut Client) -> oci_macvlan_ipam::Result<bool> {
    client.txn(vec![absent(b"/t/k")], vec![put(b"/t/k", b"v")])
}

#[test]
fn a_helper_killed_mid_request_is_an_unanswered_write_never_resent() {
    let dir = tempfile::tempdir().unwrap();
    // The handshake succeeds; the helper takes the request's first line and is killed.
    let helper = helper(dir.path(), "echo OK\nread -r line\nkill -9 $$");
    let mut client = client(&helper, 2000);
    let err = write(&mut client).unwrap_err();
    assert!(err.maybe_written(), "{err}");
    assert!(err.to_string().contains("it may still be applied"), "{err}");
    assert_eq!(
        starts(dir.path()).len(),
        1,
        "the write was sent again elsewhere"
    );
    // A read is retried on the next member.
    let mut client = self::client(&helper, 2000);
    let err = client.range(b"/t/", b"/t0").unwrap_err();
    assert!(!err.maybe_written(), "{err}");
    assert_eq!(starts(dir.path()).len(), 3);
}

#[test]
fn a_failed_handshake_is_unsent_so_the_write_goes_to_the_next_member() {
    let dir = tempfile::tempdir().unwrap();
    let helper = helper(
        dir.path(),
        "echo 'ERR TLS handshake: invalid peer certificate: UnknownIssuer'\nexit 1",
    );
    let mut client = client(&helper, 2000);
    let err = write(&mut client).unwrap_err();
    assert!(!err.maybe_written(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(
            "https://127.0.0.1:2: TLS handshake: invalid peer certificate: UnknownIssuer"
        ),
        "{text}"
    );
    let starts = starts(dir.path());
    assert_eq!(starts.len(), 2, "{starts:?}");
    // Paths, never key material, on the helper's command line.
    let helper = helper.display().to_string();
    assert!(
        starts[0].ends_with(&format!(
            "--host 127.0.0.1 --port 1 --server-name 127.0.0.1 --timeout-ms {} \
             --cacert {helper} --cert {helper} --key {helper}",
            starts[0].split(' ').nth(8).unwrap_or_default()
        )),
        "{starts:?}"
    );
}

#[test]
fn a_helper_that_never_answers_is_killed_when_the_time_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let helper = helper(dir.path(), "echo OK\nexec sleep 60");
    let mut client = client(&helper, 300);
    let err = write(&mut client).unwrap_err();
    assert!(err.maybe_written(), "{err}");
    let pid = starts(dir.path())[0].split(' ').next().unwrap().to_owned();
    assert!(
        !Path::new("/proc").join(&pid).exists(),
        "helper {pid} outlived the request"
    );
}

#[test]
fn the_helper_is_looked_for_beside_the_executable_then_in_libexec() {
    assert_eq!(
        crate::client::helper_candidates(Path::new("/usr/bin/oci-macvlan")),
        [
            Path::new("/usr/bin/oci-macvlan-tls"),
            Path::new("/usr/libexec/oci-macvlan/oci-macvlan-tls")
        ]
    );
}
