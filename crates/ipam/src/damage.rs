//! The lease store's files, checked with plain reads before LMDB maps them.
//!
//! LMDB trusts its files. It takes an empty `data.mdb` for a new store (and would hand out the
//! addresses of every live container again), and it maps the file and follows page numbers into
//! the map: a file cut short kills the process with SIGBUS, with no message, at the first page
//! past its end. So before the store is opened, its files are checked here, without a map:
//!
//! - `data.mdb` is a regular file (not a symlink, directory or FIFO) holding LMDB's two meta
//!   pages, each with LMDB's stamp, format version and page size (the layout of `MDB_meta` in
//!   LMDB's `mdb.c`: a 16-byte page header, then `mm_magic`, `mm_version`, `mm_address`,
//!   `mm_mapsize`, two 48-byte `MDB_db` whose first's `md_pad` is the page size, `mm_last_pg`,
//!   `mm_txnid`);
//! - the file holds every page up to the newest meta's last page. LMDB may leave the last few
//!   pages of that range unwritten when a transaction freed them (`mdb.c`: "the file may be
//!   shorter if the freeDB lists the final pages"), so a shorter file is walked: it is sound if
//!   every page its newest snapshot reaches (trees, sub-databases, overflow pages) is in it;
//! - `lock.mdb` is a regular file or absent (LMDB makes it).
//!
//! A writer may commit while the file is read; a verdict that such a commit can cause (a meta
//! page, a page of the tree) is checked again a few times before it stands.

use std::{
    fmt,
    fs::{File, Metadata, OpenOptions},
    io,
    os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt},
    path::Path,
    time::Duration,
};

use crate::{Error, Result};

mod walk;

use walk::Walk;

pub(crate) const DATA_FILE: &str = "data.mdb";
pub(crate) const LOCK_FILE: &str = "lock.mdb";

/// `MDB_MAGIC` and `MDB_DATA_VERSION` (`mdb.c`).
const MAGIC: u32 = 0xBEEF_C0DE;
const DATA_VERSION: u32 = 1;
/// `PAGEHDRSZ`: `mp_pgno` (8 bytes), `mp_pad` (2), `mp_flags` (2), `mp_lower`/`mp_upper` or
/// `mp_pages` (4).
const PAGE_HEADER: usize = 16;
/// Page flags (`mp_flags`).
const P_BRANCH: u16 = 0x01;
const P_LEAF: u16 = 0x02;
const P_OVERFLOW: u16 = 0x04;
const P_META: u16 = 0x08;
const P_LEAF2: u16 = 0x20;
/// Node flags (`mn_flags` of a leaf node).
const F_BIGDATA: u16 = 0x01;
const F_SUBDATA: u16 = 0x02;
/// `NODESIZE`: `mn_lo`, `mn_hi`, `mn_flags`, `mn_ksize`, each 2 bytes.
const NODE_HEADER: usize = 8;
/// Offsets in a meta page: the header, then `MDB_meta`.
const META_MAGIC: usize = PAGE_HEADER;
const META_VERSION: usize = PAGE_HEADER + 4;
/// `mm_dbs[0].md_pad`, after `mm_address` and `mm_mapsize` (8 bytes each).
const META_PAGE_SIZE: usize = PAGE_HEADER + 24;
/// `md_root`, the last field of a 48-byte `MDB_db`.
const DB_ROOT: usize = 40;
const DB_SIZE: usize = 48;
const META_FREE_ROOT: usize = META_PAGE_SIZE + DB_ROOT;
const META_MAIN_ROOT: usize = META_PAGE_SIZE + DB_SIZE + DB_ROOT;
const META_LAST_PAGE: usize = META_PAGE_SIZE + 2 * DB_SIZE;
const META_TXNID: usize = META_LAST_PAGE + 8;
const META_END: usize = META_TXNID + 8;
/// `P_INVALID`: an empty tree's root.
const NO_PAGE: u64 = u64::MAX;
/// Page sizes LMDB may have chosen (the OS page size, at most `MAX_PAGESIZE`).
const PAGE_SIZES: std::ops::RangeInclusive<u32> = 512..=0x8000;
/// Checks of a verdict a concurrent commit may have caused, and the first pause between them.
const ATTEMPTS: u32 = 4;
const FIRST_PAUSE: Duration = Duration::from_millis(2);

/// What is wrong with a file of the lease store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// Of another kind than the store's own files: a symlink, a directory, a FIFO…
    Kind {
        /// What the file is.
        found: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// The data file is not there, though the store's directory is.
    Missing,
    /// The data file holds no byte.
    Empty,
    /// Shorter than LMDB's two meta pages.
    Short {
        /// The file's size in bytes.
        size: u64,
    },
    /// A meta page without LMDB's stamp, format version or a page size LMDB uses.
    Meta {
        /// The meta page, 0 or 1.
        page: u8,
    },
    /// The newest snapshot uses a page past the end of the file.
    Truncated {
        /// The file's size in bytes.
        size: u64,
        /// The page past the end.
        page: u64,
    },
    /// A page of the newest snapshot is not what the page that names it says it is.
    Page {
        /// The page that is not what it should be.
        page: u64,
    },
    /// LMDB read past the end of the file, following a damaged page (`fault.rs`).
    Fault,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kind { found, expected } => write!(f, "{found}, not {expected}"),
            Self::Missing => f.write_str("missing"),
            Self::Empty => f.write_str("empty"),
            Self::Short { size } => write!(f, "{size} bytes, shorter than its two meta pages"),
            Self::Meta { page } => write!(f, "meta page {page} is not an LMDB meta page"),
            Self::Truncated { size, page } => write!(
                f,
                "truncated: {size} bytes, but its newest snapshot uses page {page}, past the end"
            ),
            Self::Page { page } => write!(
                f,
                "page {page} of its newest snapshot is not the page the tree names"
            ),
            Self::Fault => f.write_str("a page led LMDB past the end of the file"),
        }
    }
}

impl Damage {
    /// Whether a writer committing while the file was read could have made it look so.
    fn may_pass(&self) -> bool {
        matches!(
            self,
            Self::Meta { .. } | Self::Truncated { .. } | Self::Page { .. }
        )
    }
}

/// The kind of a file, for a message.
pub(crate) fn kind(meta: &Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "a regular file"
    }
}

/// The metadata of `path` itself (a symlink is not followed), `None` if there is nothing.
pub(crate) fn lstat(path: &Path) -> Result<Option<Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::ReadStore {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn damaged(path: &Path, store: &Path, damage: Damage) -> Error {
    Error::Damaged {
        path: path.to_path_buf(),
        store: store.to_path_buf(),
        damage,
    }
}

/// Opens a file of the store for reading without following a symlink or waiting on a FIFO,
/// and fails with [`Damage::Kind`] unless it is a regular file.
pub(crate) fn open_regular(path: &Path, store: &Path) -> Result<Option<File>> {
    let read = |source| Error::ReadStore {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        // O_NOFOLLOW on a symlink: ELOOP.
        Err(err) if err.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(damaged(
                path,
                store,
                Damage::Kind {
                    found: "a symbolic link",
                    expected: "a regular file",
                },
            ));
        }
        Err(err) => return Err(read(err)),
    };
    let meta = file.metadata().map_err(read)?;
    if !meta.file_type().is_file() {
        return Err(damaged(
            path,
            store,
            Damage::Kind {
                found: kind(&meta),
                expected: "a regular file",
            },
        ));
    }
    Ok(Some(file))
}

/// Checks the LMDB files of the store in `store` (a directory: the caller checked it). With
/// `thorough`, every page the trees reach is read and checked too, whatever the file's length:
/// what an operator command that reads every lease does first, so that a page of garbage inside
/// the trees is reported rather than followed by LMDB.
pub(crate) fn check(store: &Path, thorough: bool) -> Result<()> {
    let mut pause = FIRST_PAUSE;
    let mut attempt = 1;
    loop {
        match examine(store, thorough).map(drop) {
            Err(Error::Damaged { damage, .. }) if damage.may_pass() && attempt < ATTEMPTS => {
                std::thread::sleep(pause);
                pause *= 4;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The check; with `walk_always`, the tree is walked even when the file is long enough.
/// Returns the pages walked.
fn examine(store: &Path, walk_always: bool) -> Result<u64> {
    let lock = store.join(LOCK_FILE);
    if let Some(meta) = lstat(&lock)?
        && !meta.file_type().is_file()
    {
        return Err(damaged(
            &lock,
            store,
            Damage::Kind {
                found: kind(&meta),
                expected: "a regular file",
            },
        ));
    }
    let path = store.join(DATA_FILE);
    let Some(file) = open_regular(&path, store)? else {
        return Err(damaged(&path, store, Damage::Missing));
    };
    let read = |source| Error::ReadStore {
        path: path.clone(),
        source,
    };
    let damage = |damage| damaged(&path, store, damage);
    let mut head = [0; META_END];
    let got = read_full(&file, 0, &mut head).map_err(read)?;
    if got == 0 {
        return Err(damage(Damage::Empty));
    }
    let size = || file.metadata().map(|m| m.len()).map_err(read);
    if got < META_END {
        return Err(damage(Damage::Short { size: size()? }));
    }
    let first = Meta::parse(&head).ok_or_else(|| damage(Damage::Meta { page: 0 }))?;
    let page_size = u64::from(first.page_size);
    let got = read_full(&file, page_size, &mut head).map_err(read)?;
    if got < META_END {
        return Err(damage(Damage::Short { size: size()? }));
    }
    let second = Meta::parse(&head)
        .filter(|m| m.page_size == first.page_size)
        .ok_or_else(|| damage(Damage::Meta { page: 1 }))?;
    // LMDB reads the meta with the higher transaction id; the first on a tie.
    let newest = if second.txnid > first.txnid {
        second
    } else {
        first
    };
    // Measured after the meta pages were read: a writer writes its pages before its meta page.
    let size = size()?;
    let pages = size / page_size;
    if newest.last_page < pages && !walk_always {
        return Ok(0);
    }
    let mut walk = Walk {
        file: &file,
        page_size,
        pages,
        size,
        visited: 0,
    };
    match walk.run(&newest) {
        Ok(None) => Ok(walk.visited),
        Ok(Some(found)) => Err(damage(found)),
        Err(err) => Err(read(err)),
    }
}

/// Reads into `buf` from `offset` until it is full or the file ends; returns the bytes read.
fn read_full(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(done)
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(buf: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(buf.get(at..at + 8)?.try_into().ok()?))
}

/// What the check needs of an `MDB_meta`.
#[derive(Debug, Clone, Copy)]
struct Meta {
    page_size: u32,
    free_root: u64,
    main_root: u64,
    last_page: u64,
    txnid: u64,
}

impl Meta {
    /// The meta page at the start of `page`, if it is one of LMDB's.
    fn parse(page: &[u8]) -> Option<Self> {
        let is_meta = u16_at(page, 10)? & P_META != 0;
        let stamped = u32_at(page, META_MAGIC)? == MAGIC;
        let version = u32_at(page, META_VERSION)? == DATA_VERSION;
        let page_size = u32_at(page, META_PAGE_SIZE)?;
        let last_page = u64_at(page, META_LAST_PAGE)?;
        (is_meta
            && stamped
            && version
            && page_size.is_power_of_two()
            && PAGE_SIZES.contains(&page_size)
            && last_page >= 1)
            .then_some(Self {
                page_size,
                free_root: u64_at(page, META_FREE_ROOT)?,
                main_root: u64_at(page, META_MAIN_ROOT)?,
                last_page,
                txnid: u64_at(page, META_TXNID)?,
            })
    }
}

#[cfg(test)]
#[path = "damage_tests.rs"]
mod tests;
