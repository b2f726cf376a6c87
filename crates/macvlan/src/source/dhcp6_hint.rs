//! The last DHCPv6 address each identity was given, kept past its RELEASE: the next SOLICIT of
//! the same identity (the same container on the same network, after a stop and start or a
//! re-create) asks for it (an IA_NA address hint, RFC 8415 18.2.1), and a server that has it
//! free gives it again, as DHCPv4 servers do for a client identifier. A server gives what it
//! likes all the same: a hint is a wish, so a lost or unreadable file only loses the wish.
//!
//! One file per identity, `<state-dir>/dhcp6-hints/<DUID hex>-<IAID>`, holding the address:
//! owner-only, never followed through a link, read bounded.

use std::{
    fs::{self, DirBuilder, File, OpenOptions},
    io::{Read, Write},
    net::Ipv6Addr,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use oci_macvlan_dhcp::ClientId;

use super::dhcp6::hex;

/// The hints' directory under the state dir.
pub(crate) const DIR: &str = "dhcp6-hints";
/// The most a hint file is read: an IPv6 address as text and a newline.
const AT_MOST: u64 = 64;

fn path(dir: &Path, id: &ClientId) -> PathBuf {
    dir.join(format!("{}-{}", hex(id.duid()), id.iaid()))
}

/// The address `id` was last given, if one is kept.
pub(crate) fn read(dir: &Path, id: &ClientId) -> Option<Ipv6Addr> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path(dir, id))
        .ok()?;
    let mut text = String::new();
    file.take(AT_MOST).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Keeps `address` as the one `id` was given (best effort: a hint that cannot be written is
/// only a wish lost). Written to a temporary file and renamed over the old one, so a reader
/// never sees half of it.
pub(crate) fn write(dir: &Path, id: &ClientId, address: Ipv6Addr) {
    let _ = write_inner(dir, id, address);
}

fn write_inner(dir: &Path, id: &ClientId, address: Ipv6Addr) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let to = path(dir, id);
    let temp = to.with_extension("tmp");
    let mut file: File = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&temp)?;
    writeln!(file, "{address}")?;
    drop(file);
    fs::rename(&temp, &to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_address_is_read_back_per_identity() {
        let dir = tempfile::tempdir().unwrap();
        let hints = dir.path().join(DIR);
        let (a, b) = (
            ClientId::derive(b"k", "lan", "c1"),
            ClientId::derive(b"k", "lan", "c2"),
        );
        assert_eq!(read(&hints, &a), None);
        let address: Ipv6Addr = "2001:db8::101".parse().unwrap();
        write(&hints, &a, address);
        assert_eq!(read(&hints, &a), Some(address));
        assert_eq!(read(&hints, &b), None);
        write(&hints, &a, "2001:db8::102".parse().unwrap());
        assert_eq!(read(&hints, &a), "2001:db8::102".parse().ok());
    }

    #[test]
    fn garbage_a_link_or_a_huge_file_is_no_hint() {
        let dir = tempfile::tempdir().unwrap();
        let hints = dir.path().join(DIR);
        let id = ClientId::derive(b"k", "lan", "c1");
        fs::create_dir_all(&hints).unwrap();
        fs::write(path(&hints, &id), "not an address\n").unwrap();
        assert_eq!(read(&hints, &id), None);
        fs::write(path(&hints, &id), "2001:db8::1".repeat(100)).unwrap();
        assert_eq!(read(&hints, &id), None);
        fs::remove_file(path(&hints, &id)).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, "2001:db8::9\n").unwrap();
        std::os::unix::fs::symlink(&elsewhere, path(&hints, &id)).unwrap();
        assert_eq!(read(&hints, &id), None);
    }
}
