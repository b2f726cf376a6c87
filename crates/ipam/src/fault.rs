//! The last line of defence against a damaged store: a SIGBUS in the store's map.
//!
//! `damage.rs` checks what LMDB trusts before it maps the file (its meta pages, its length, the
//! pages its trees reach when the file is short). It does not read every page at every open: a
//! page of garbage inside the trees (a disk that returned another block, a hand edit) can still
//! lead LMDB to read past the end of the file, which the kernel answers with SIGBUS, and the
//! process would die with no word. So while a store is open, a SIGBUS whose address lies in its
//! map prints the store's [`Error::Damaged`](crate::Error::Damaged) line on stderr and exits 1.
//! This path writes no hook journal record (only `hooks/` writes the journal, after the
//! command returns); the checks of `damage.rs` come first and cover every damage they can see.
//!
//! Any other SIGBUS is left to the handler that was there before (returning from this one
//! faults again there).

use std::{
    ptr,
    sync::{
        Mutex, OnceLock, PoisonError,
        atomic::{AtomicPtr, Ordering},
    },
};

use nix::{
    libc,
    sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction},
};

/// A store's map and the line that says it is damaged.
#[derive(Debug, PartialEq, Eq)]
struct Guarded {
    inode: u64,
    start: usize,
    end: usize,
    line: Box<[u8]>,
}

/// The map the handler answers for: the store this process opened last (a hook opens one).
static CURRENT: AtomicPtr<Guarded> = AtomicPtr::new(ptr::null_mut());
/// Every `Guarded` ever made, never freed (the handler may be reading one): one per store a
/// process opens, reused when the same store is opened again.
static KNOWN: Mutex<Vec<&'static Guarded>> = Mutex::new(Vec::new());
/// The action this handler replaced, given back a SIGBUS that is not ours.
static PREVIOUS: OnceLock<Option<SigAction>> = OnceLock::new();

/// From now on, a SIGBUS at an address where this process maps the file of inode `inode` (the
/// store's `data.mdb`, which LMDB maps once) prints `line` (and a newline) on stderr and exits
/// 1. Without such a map (none found) nothing changes.
pub(crate) fn guard(inode: u64, line: &str) {
    let Some((start, end)) = map_of(inode) else {
        return;
    };
    PREVIOUS.get_or_init(install);
    let wanted = Guarded {
        inode,
        start,
        end,
        line: format!("{line}\n").into_bytes().into_boxed_slice(),
    };
    let mut known = KNOWN.lock().unwrap_or_else(PoisonError::into_inner);
    let guarded = match known.iter().copied().find(|g| **g == wanted) {
        Some(guarded) => guarded,
        None => {
            let guarded: &'static Guarded = Box::leak(Box::new(wanted));
            known.push(guarded);
            guarded
        }
    };
    CURRENT.store(ptr::from_ref(guarded).cast_mut(), Ordering::Release);
}

/// Ends [`guard`] of the store whose `data.mdb` has inode `inode`: its map is gone, and the
/// addresses may be another map's.
pub(crate) fn forget(inode: u64) {
    let known = KNOWN.lock().unwrap_or_else(PoisonError::into_inner);
    let current = CURRENT.load(Ordering::Acquire);
    if known
        .iter()
        .any(|g| ptr::eq(*g, current) && g.inode == inode)
    {
        CURRENT.store(ptr::null_mut(), Ordering::Release);
    }
}

/// Where this process maps the file of inode `inode`: the first such line of
/// `/proc/self/maps` (`start-end perms offset dev inode path`).
fn map_of(inode: u64) -> Option<(usize, usize)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        if fields.nth(3)?.parse::<u64>().ok()? != inode {
            return None;
        }
        Some((
            usize::from_str_radix(start, 16).ok()?,
            usize::from_str_radix(end, 16).ok()?,
        ))
    })
}

fn install() -> Option<SigAction> {
    let action = SigAction::new(
        SigHandler::SigAction(on_sigbus),
        SaFlags::SA_SIGINFO,
        SigSet::empty(),
    );
    // SAFETY: `on_sigbus` only loads atomics, reads memory that is never freed or changed once
    // published, and calls `write`, `sigaction` and `_exit`, which are async-signal-safe.
    #[allow(unsafe_code)]
    unsafe { sigaction(Signal::SIGBUS, &action) }.ok()
}

extern "C" fn on_sigbus(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid `siginfo_t` to an SA_SIGINFO handler; for SIGBUS its
    // fault fields are set. `CURRENT` is null or points to a `Guarded` that is never freed.
    #[allow(unsafe_code)]
    unsafe {
        let address = (*info).si_addr() as usize;
        if let Some(guarded) = CURRENT.load(Ordering::Acquire).as_ref()
            && (guarded.start..guarded.end).contains(&address)
        {
            libc::write(2, guarded.line.as_ptr().cast(), guarded.line.len());
            libc::_exit(1);
        }
        // Not in the store's map: the previous action takes it when the access faults again.
        let previous = PREVIOUS.get().copied().flatten().unwrap_or_else(|| {
            SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty())
        });
        let _ = sigaction(Signal::SIGBUS, &previous);
    }
}
