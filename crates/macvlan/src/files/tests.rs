#![allow(clippy::unwrap_used)]

use std::os::unix::fs::symlink;

use super::*;

#[test]
fn writes_have_fixed_modes_and_never_follow_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let sub = dir.path().join("a/b");
    let path = sub.join("x.json");
    let written = write_atomic(&path, b"{}", Put::Replace, Durability::UntilReboot);
    nix::sys::stat::umask(old);
    written.unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&path), FILE_MODE);
    assert_eq!(mode(&sub), DIR_MODE);
    assert_eq!(mode(&dir.path().join("a")), DIR_MODE);

    // A symlink planted where a file of ours goes is replaced, its target untouched.
    let target = dir.path().join("target");
    fs::write(&target, b"keep").unwrap();
    let planted = sub.join("y.json");
    symlink(&target, &planted).unwrap();
    let err = read_own(&planted).unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
    write_atomic(&planted, b"{}", Put::Replace, Durability::Durable).unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"keep");
    assert!(
        !fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // A dir of ours that is a symlink is refused.
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, dir.path().join("c")).unwrap();
    let err = write_atomic(
        &dir.path().join("c/z.json"),
        b"{}",
        Put::Replace,
        Durability::UntilReboot,
    )
    .unwrap_err();
    assert!(crate::one_line(&err).contains("symlink"), "{err}");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn reads_are_bounded_and_of_regular_files_only() {
    let dir = tempfile::tempdir().unwrap();
    assert!(read_own(&dir.path().join("missing")).unwrap().is_none());
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert!(read_own(&fifo).unwrap_err().to_string().contains("regular"));
    assert!(read_own(dir.path()).is_err());
    let big = dir.path().join("big");
    File::create(&big).unwrap().set_len(MAX_FILE + 1).unwrap();
    assert!(read_own(&big).unwrap_err().to_string().contains("1 MiB"));
}

#[test]
fn a_dir_others_may_write_or_another_user_owns_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    check_private_dir(&state, "state dir").unwrap();
    assert!(state.is_dir());
    fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
    let err = crate::one_line(&check_private_dir(&state, "state dir").unwrap_err());
    assert!(err.contains("777") && err.contains("state dir"), "{err}");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
    nix::unistd::chown(&state, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let err = crate::one_line(&check_private_dir(&state, "state dir").unwrap_err());
    assert!(err.contains("owned by uid 65534"), "{err}");
}

#[test]
fn stale_temporary_files_go_and_a_live_writer_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join(".n.json.tmp-999999999");
    let live = dir
        .path()
        .join(format!(".n.json.tmp-{}", std::process::id()));
    fs::write(&dead, b"").unwrap();
    fs::write(&live, b"").unwrap();
    assert_eq!(remove_stale_temps(dir.path()).unwrap(), 1);
    assert!(!dead.exists() && live.exists());
}

#[test]
fn a_dir_gone_since_it_was_made_is_made_again_and_a_temporary_file_left_of_this_pid_goes() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("records");
    let path = sub.join("n.json");
    write_atomic(&path, b"1", Put::Replace, Durability::UntilReboot).unwrap();
    fs::remove_dir_all(&sub).unwrap();
    write_atomic(&path, b"2", Put::Replace, Durability::UntilReboot).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"2");
    let left = sub.join(format!(".n.json.tmp-{}", std::process::id()));
    fs::write(&left, b"torn").unwrap();
    write_atomic(&path, b"3", Put::Replace, Durability::UntilReboot).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"3");
    assert!(!left.exists());
}

/// Run alone in a child process (the switch is for the whole process): with
/// [`make_no_dirs`], a write or a lock in a dir that is gone fails and makes nothing,
/// where the dir was made and checked earlier in the process too.
#[test]
fn a_process_that_makes_no_dirs_never_makes_a_gone_dir_again() {
    const CHILD: &str = "OCI_MACVLAN_TEST_MAKE_NO_DIRS";
    let Some(root) = std::env::var_os(CHILD) else {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "files::tests::a_process_that_makes_no_dirs_never_makes_a_gone_dir_again",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("1 passed"), "{text}");
        return;
    };
    let state = Path::new(&root).join("run");
    let path = state.join("endpoints/c1.json");
    write_atomic(&path, b"1", Put::Replace, Durability::UntilReboot).unwrap();
    crate::lock::FileLock::acquire(&state.join("locks/c1")).unwrap();
    drop(oci_macvlan_ipam::LmdbStore::open(&state).unwrap());
    make_no_dirs();
    write_atomic(&path, b"2", Put::Replace, Durability::UntilReboot).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"2");
    drop(oci_macvlan_ipam::LmdbStore::open(&state).unwrap());
    check_private_dir(&state, "state dir").unwrap();
    fs::remove_dir_all(&state).unwrap();
    let err = oci_macvlan_ipam::LmdbStore::open(&state).unwrap_err();
    assert!(
        matches!(err, oci_macvlan_ipam::Error::StoreGone { .. }),
        "{err}"
    );
    let err = crate::one_line(&check_private_dir(&state, "state dir").unwrap_err());
    assert!(err.contains("No such file"), "{err}");
    let err = write_atomic(&path, b"3", Put::Replace, Durability::UntilReboot).unwrap_err();
    assert!(crate::one_line(&err).contains("No such file"), "{err}");
    let err = crate::lock::FileLock::acquire(&state.join("locks/c1")).unwrap_err();
    assert!(crate::one_line(&err).contains("No such file"), "{err}");
    assert!(!state.exists(), "the state dir was made again");
}
