//! Whether a container still lives, decided from facts recorded at attach, never guessed: a pid
//! alone may have been reused, so its start time is recorded with it; a namespace path may have
//! been re-mounted with another namespace, so its device and inode are recorded too, and, for a
//! namespace path, its cookie: the kernel gives a deleted namespace's inode to the next one made,
//! so a path re-mounted at once can show the old identity (`oci_macvlan_netlink_core::Netns::cookie`).

use std::{fs, io, path::PathBuf};

use oci_macvlan_netlink_core::{Netns, NetnsId};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Recorded at attach, while the container certainly lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Liveness {
    /// The container's process; `None` when no pid was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    /// The namespace the links were created in (device and inode of its nsfs file).
    pub netns_dev: u64,
    /// The inode of that namespace's nsfs file (its device is `netns_dev`).
    pub netns_ino: u64,
    /// That namespace's cookie, when no process was given or the namespace is a path that
    /// outlives the container; `None` otherwise, on a kernel without cookies, and in records
    /// written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns_cookie: Option<u64>,
}

/// A container's process: its pid and its start time, which tell it from a later
/// process given the same pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// The container's pid, as its runtime gave it.
    pub pid: i32,
    /// Clock ticks after boot at which the process started (`/proc/PID/stat`, field 22).
    pub start: u64,
}

impl Liveness {
    /// `by_path`: the namespace is a path that outlives the container (its record names it),
    /// whose cookie is recorded too, pid or not: a take-back enters what the path holds then.
    pub(crate) fn observe(pid: Option<i32>, netns: &Netns, by_path: bool) -> Result<Self> {
        let process = match pid {
            None => None,
            Some(pid) => match ProcStat::read(pid)? {
                Some(stat) if !stat.zombie => Some(Process {
                    pid,
                    start: stat.start,
                }),
                _ => {
                    return Err(Error::ProcessGone {
                        pid,
                        path: ProcStat::path(pid),
                    });
                }
            },
        };
        let id = netns.identity().map_err(Error::ContainerNetns)?;
        let netns_cookie = match (process, by_path) {
            (Some(_), false) => None,
            _ => netns.cookie().map_err(Error::ContainerNetns)?,
        };
        Ok(Self {
            process,
            netns_dev: id.dev,
            netns_ino: id.ino,
            netns_cookie,
        })
    }

    /// Whether `netns`, opened from the recorded path, is the namespace recorded: its identity,
    /// and its cookie where one was recorded (and the kernel gives one).
    pub(crate) fn is_netns(&self, netns: &Netns) -> Result<bool> {
        if netns.identity().map_err(Error::ContainerNetns)? != self.netns() {
            return Ok(false);
        }
        let Some(recorded) = self.netns_cookie else {
            return Ok(true);
        };
        match netns.cookie() {
            Ok(now) => Ok(now.is_none_or(|now| now == recorded)),
            // Not a network namespace to enter (the path holds another kind's nsfs file, which
            // may have the same inode number: all kinds are numbered from one pool).
            Err(err) if err.errno() == Some(oci_macvlan_netlink_core::Errno::EINVAL) => Ok(false),
            Err(err) => Err(Error::ContainerNetns(err)),
        }
    }

    /// Whether the namespace at `path` is the one recorded (see [`Self::is_netns`]); `false`
    /// when none is there.
    pub fn is_at(&self, path: &std::path::Path) -> Result<bool> {
        match Netns::open_if_exists(path).map_err(Error::ContainerNetns)? {
            Some(netns) => self.is_netns(&netns),
            None => Ok(false),
        }
    }

    pub(crate) fn netns(&self) -> NetnsId {
        NetnsId {
            dev: self.netns_dev,
            ino: self.netns_ino,
        }
    }
}

/// What `gc` concludes about one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The container lives; the text says how that is known.
    Alive(String),
    /// The container is gone; the text says how that is known.
    Gone(String),
    /// Not enough facts to decide: nothing is released.
    Undecided(String),
}

/// Judges a container from its recorded facts. With a pid, the pid decides: the container lives
/// exactly as long as that process. Without one, a namespace that outlives containers decides.
pub(crate) fn judge(facts: Option<&Liveness>, netns_path: Option<&PathBuf>) -> Verdict {
    let Some(facts) = facts else {
        return Verdict::Undecided(
            "its record holds no liveness facts (written by an older oci-macvlan)".into(),
        );
    };
    if let Some(Process { pid, start }) = facts.process {
        return match ProcStat::read(pid) {
            Ok(Some(stat)) if stat.start == start && !stat.zombie => {
                Verdict::Alive(format!("pid {pid} still runs"))
            }
            Ok(Some(stat)) if stat.start == start => {
                Verdict::Gone(format!("pid {pid} has exited (a zombie)"))
            }
            Ok(Some(_)) => Verdict::Gone(format!(
                "pid {pid} is gone (another process has that pid now)"
            )),
            Ok(None) => Verdict::Gone(format!("pid {pid} is gone")),
            Err(err) => Verdict::Undecided(crate::one_line(&err)),
        };
    }
    match netns_path {
        Some(path) => match Netns::open_if_exists(path)
            .map_err(Error::ContainerNetns)
            .and_then(|ns| ns.map(|ns| facts.is_netns(&ns)).transpose())
        {
            Ok(Some(true)) => Verdict::Alive(format!(
                "its network namespace {} still exists",
                path.display()
            )),
            Ok(_) => Verdict::Gone(format!("its network namespace {} is gone", path.display())),
            Err(err) => Verdict::Undecided(crate::one_line(&err)),
        },
        None => Verdict::Undecided("no pid and no namespace path were recorded".into()),
    }
}

struct ProcStat {
    start: u64,
    zombie: bool,
}

impl ProcStat {
    fn path(pid: i32) -> PathBuf {
        PathBuf::from(format!("/proc/{pid}/stat"))
    }

    /// `None` when no process has that pid.
    fn read(pid: i32) -> Result<Option<Self>> {
        let path = Self::path(pid);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) if err.raw_os_error() == Some(nix::libc::ESRCH) => return Ok(None),
            Err(source) => return Err(Error::ReadProc { path, source }),
        };
        Self::parse(&text).map(Some).ok_or_else(|| Error::ReadProc {
            path,
            source: io::Error::new(io::ErrorKind::InvalidData, "unexpected format"),
        })
    }

    /// `PID (COMM) STATE PPID …`: COMM may hold spaces and parentheses, so fields are counted
    /// after the last `)`. STATE is field 3, the start time field 22.
    fn parse(text: &str) -> Option<Self> {
        let rest = &text[text.rfind(')')? + 1..];
        let mut fields = rest.split_ascii_whitespace();
        let state = fields.next()?;
        let start = fields.nth(22 - 4)?.parse().ok()?;
        Some(Self {
            start,
            zombie: state == "Z" || state == "X",
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let line =
            "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10";
        let stat = ProcStat::parse(line).unwrap();
        assert_eq!(stat.start, 987654);
        assert!(!stat.zombie);
        let zombie = "7 (sh) Z 1 7 7 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 55 0 0";
        assert!(ProcStat::parse(zombie).unwrap().zombie);
        assert!(ProcStat::parse("garbage").is_none());
    }

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_a_reused_pid() {
        let me = std::process::id().try_into().unwrap();
        let netns = Netns::open("/proc/self/ns/net").unwrap();
        let facts = Liveness::observe(Some(me), &netns, false).unwrap();
        assert!(matches!(judge(Some(&facts), None), Verdict::Alive(_)));
        let mut reused = facts.clone();
        reused.process.as_mut().unwrap().start += 1;
        assert_eq!(
            judge(Some(&reused), None),
            Verdict::Gone(format!(
                "pid {me} is gone (another process has that pid now)"
            ))
        );
        assert!(matches!(judge(None, None), Verdict::Undecided(_)));
    }

    #[test]
    fn without_a_pid_the_namespace_path_decides() {
        let path = PathBuf::from("/proc/self/ns/net");
        let netns = Netns::open(&path).unwrap();
        let facts = Liveness::observe(None, &netns, false).unwrap();
        assert!(matches!(
            judge(Some(&facts), Some(&path)),
            Verdict::Alive(_)
        ));
        let mut other = facts.clone();
        other.netns_ino += 1;
        assert!(matches!(judge(Some(&other), Some(&path)), Verdict::Gone(_)));
        // The same device and inode, another cookie: a namespace made since at that path.
        if let Some(cookie) = facts.netns_cookie {
            let mut remade = facts.clone();
            remade.netns_cookie = Some(cookie + 1);
            assert!(matches!(
                judge(Some(&remade), Some(&path)),
                Verdict::Gone(_)
            ));
        }
        // A record written before cookies were kept: the identity decides.
        let older = Liveness {
            netns_cookie: None,
            ..facts.clone()
        };
        assert!(matches!(
            judge(Some(&older), Some(&path)),
            Verdict::Alive(_)
        ));
        let missing = PathBuf::from("/nonexistent/netns");
        assert!(matches!(
            judge(Some(&facts), Some(&missing)),
            Verdict::Gone(_)
        ));
    }
}
