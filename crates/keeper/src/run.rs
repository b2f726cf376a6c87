//! A keeper's life: take a role in the slot, stand by until the active keeper dies, keep the
//! duty on its schedule while keeping a standby alive, end with the container or the duty.

use std::{
    fs::File,
    os::{
        fd::{AsFd, OwnedFd},
        unix::process::ExitStatusExt,
    },
    process::Child,
    time::{Duration, Instant, SystemTime},
};

use nix::{
    fcntl::Flock,
    poll::{PollFd, PollFlags, PollTimeout, poll},
    sys::signal::Signal,
};
use rustix::process::{Pid, PidfdFlags, pidfd_open};

use crate::{Container, Error, Result, Role, Slot};

/// How often an active keeper looks for its standby, and a standby for a free active role,
/// when nothing else wakes them (a standby killed is replaced within this; an active one
/// is replaced at once).
const RECHECK: Duration = Duration::from_secs(10);
/// A standby that ended by itself (not killed) within this of its start is started again
/// only after [`RECHECK`] (one that cannot live — a binary replaced by one that refuses its
/// arguments — is not started in a loop).
const SHORT_LIFE: Duration = Duration::from_secs(5);
/// The least time between two acts (a duty whose schedule stays in the past, because its
/// act cannot record the next, is not run back to back).
const ACT_GAP: Duration = Duration::from_secs(1);

/// A duty a keeper keeps: its schedule and its act live in the duty's own store, so a keeper
/// that takes over finds them where the last one left them.
pub trait Duty {
    /// When to act next (read from the store); `None`: nothing left to keep (the lease was
    /// released), the keeper ends.
    fn next(&mut self) -> Option<SystemTime>;
    /// Acts once (a renewal), recording the outcome and the next time in the store. What
    /// fails is the duty's to record and to retry; the keeper asks [`Duty::next`] again.
    fn act(&mut self, container: &Container);
}

/// How a keeper ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container's process ended.
    ContainerGone,
    /// The duty had nothing left to keep.
    DutyDone,
    /// Another pair keeps this slot.
    Taken,
    /// The slot's files were removed or replaced under this keeper: its role is no one's.
    SlotGone,
}

/// Runs a keeper for `duty` of `container` in `slot`; `standby` starts another keeper process
/// for the same slot (by [`crate::spawn`]ing this program again).
pub fn run(
    slot: &Slot,
    container: &Container,
    duty: &mut dyn Duty,
    standby: &mut dyn FnMut() -> Result<Child>,
) -> Result<Ended> {
    let active = match slot.claim()? {
        Role::Taken => return Ok(Ended::Taken),
        Role::Active(lock) => lock,
        Role::Standby(lock) => match stand_by(slot, container, &lock)? {
            Ok(active) => {
                drop(lock);
                active
            }
            Err(ended) => return Ok(ended),
        },
    };
    slot.record_active()?;
    // The standby this keeper started, when, and when it may start the next.
    let mut child: Option<(Child, Instant)> = None;
    let mut next_start = Instant::now();
    let mut last_act: Option<Instant> = None;
    let ended = loop {
        if !container.alive() {
            break Ended::ContainerGone;
        }
        if !slot.holds(&active) {
            break Ended::SlotGone;
        }
        // Asked first: a keeper whose duty is done starts no standby (which would take over
        // only to end in turn).
        let Some(next) = duty.next() else {
            break Ended::DutyDone;
        };
        // Reap a standby that ended; start one when none holds the role.
        if let Some((c, started)) = child.as_mut() {
            let status = c.try_wait();
            if !matches!(status, Ok(None)) {
                // Killed (someone's SIGKILL or SIGTERM) it is replaced at once; one that
                // ended by itself soon after its start would only end again.
                let killed = status
                    .ok()
                    .flatten()
                    .and_then(|s| s.signal())
                    .is_some_and(|sig| {
                        sig == libc_sig(Signal::SIGKILL) || sig == libc_sig(Signal::SIGTERM)
                    });
                if !killed && started.elapsed() < SHORT_LIFE {
                    next_start = Instant::now() + RECHECK;
                }
                child = None;
            }
        }
        if child.is_none() && Instant::now() >= next_start && slot.standby_missing()? {
            match standby() {
                Ok(c) => child = Some((c, Instant::now())),
                // Tried again at the next recheck; the duty goes on.
                Err(_) => next_start = Instant::now() + RECHECK,
            }
        }
        let mut wait = next
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        if let Some(last) = last_act {
            wait = wait.max(ACT_GAP.saturating_sub(last.elapsed()));
        }
        if wait.is_zero() {
            duty.act(container);
            last_act = Some(Instant::now());
            continue;
        }
        if child.is_none() {
            wait = wait.min(
                next_start
                    .saturating_duration_since(Instant::now())
                    .max(ACT_GAP),
            );
        }
        // Our own standby's death wakes us too (one started by someone else is found at the
        // next recheck).
        let standby_fd = child.as_ref().and_then(|(c, _)| pidfd(c.id() as i32));
        if wait_any(container, standby_fd.as_ref(), wait.min(RECHECK))? {
            break Ended::ContainerGone;
        }
    };
    drop(active);
    Ok(ended)
}

fn libc_sig(signal: Signal) -> i32 {
    signal as i32
}

fn pidfd(pid: i32) -> Option<OwnedFd> {
    pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()
}

/// Waits up to `timeout` for the container or `other` to end; whether the container has. A
/// container with no pidfd (watched by its namespace) is looked at every
/// [`crate::netns_watch::POLL`].
fn wait_any(container: &Container, other: Option<&OwnedFd>, timeout: Duration) -> Result<bool> {
    let Some(pidfd) = container.pidfd() else {
        let timeout = timeout.min(crate::netns_watch::POLL);
        if let Some(fd) = other {
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            let _ = poll(
                &mut fds,
                PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX),
            );
        } else {
            std::thread::sleep(timeout);
        }
        return Ok(!container.alive());
    };
    let mut fds = vec![PollFd::new(pidfd, PollFlags::POLLIN)];
    if let Some(fd) = other {
        fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
    }
    match poll(
        &mut fds,
        PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX),
    ) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => {}
        Err(e) => {
            return Err(Error::Wait {
                pid: container.pid(),
                source: e.into(),
            });
        }
    }
    Ok(fds[0]
        .revents()
        .is_some_and(|r| r.contains(PollFlags::POLLIN)))
}

/// Waits until the active role is free (then holds it), or the container ends or the slot
/// loses the standby's file (how the keeper ends).
fn stand_by(
    slot: &Slot,
    container: &Container,
    standby: &Flock<File>,
) -> Result<Result<Flock<File>, Ended>> {
    loop {
        if !slot.holds(standby) {
            return Ok(Err(Ended::SlotGone));
        }
        if let Some(lock) = slot.take_over()? {
            return Ok(Ok(lock));
        }
        // The active keeper's pidfd wakes this one the moment it dies. A pid recorded by a
        // keeper that died since may be another process's: the recheck bounds that wait.
        let active = slot.active_pid().and_then(pidfd);
        let timeout = if active.is_some() {
            RECHECK
        } else {
            // The active keeper has not recorded itself yet.
            Duration::from_millis(50)
        };
        if wait_any(container, active.as_ref(), timeout)? {
            return Ok(Err(Ended::ContainerGone));
        }
    }
}
