//! Keeper pairs as real processes: this test binary, run again with `KEEPER_SLOT` set, is the
//! keeper (see `keeper_process`). Its duty: act every 300 ms (a line "PID" appended to `acts`)
//! while the file `schedule` exists.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant, SystemTime},
};

use oci_macvlan_keeper::{Container, Duty, Slot, detach, run, spawn, start_time};

const PERIOD: Duration = Duration::from_millis(300);

/// Held while this process starts a child: the pipe test's descriptor (not close-on-exec)
/// must reach only the keeper it starts.
static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn spawning() -> std::sync::MutexGuard<'static, ()> {
    SPAWN.lock().unwrap_or_else(|e| e.into_inner())
}

struct Ticks {
    dir: PathBuf,
    period: Duration,
}

impl Duty for Ticks {
    fn next(&mut self) -> Option<SystemTime> {
        let meta = std::fs::metadata(self.dir.join("schedule")).ok()?;
        Some(meta.modified().ok()? + self.period)
    }

    fn act(&mut self, _container: &Container) {
        use std::io::Write;
        let mut acts = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.join("acts"))
            .expect("acts");
        writeln!(acts, "{}", std::process::id()).expect("write");
        // Rewritten: its mtime is the last act (unless the duty is stuck: it cannot record).
        if std::env::var_os("KEEPER_STUCK").is_none() {
            std::fs::write(self.dir.join("schedule"), b"").expect("schedule");
        }
    }
}

fn keeper_command(dir: &Path, pid: i32, start: u64) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("exe"));
    for var in ["KEEPER_PERIOD_MS", "KEEPER_BROKEN_STANDBY", "KEEPER_STUCK"] {
        if let Ok(value) = std::env::var(var) {
            cmd.env(var, value);
        }
    }
    cmd.args([
        "--exact",
        "keeper_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("KEEPER_SLOT", dir)
    .env("KEEPER_PID", pid.to_string())
    .env("KEEPER_START", start.to_string());
    cmd
}

/// The keeper itself, when this binary is run as one; a no-op test otherwise.
#[test]
fn keeper_process() {
    let Some(dir) = std::env::var_os("KEEPER_SLOT").map(PathBuf::from) else {
        return;
    };
    detach().expect("detach");
    let pid: i32 = std::env::var("KEEPER_PID")
        .expect("pid")
        .parse()
        .expect("pid");
    let start: u64 = std::env::var("KEEPER_START")
        .expect("start")
        .parse()
        .expect("start");
    let Ok(container) = Container::open(pid, start) else {
        std::process::exit(0);
    };
    let period = std::env::var("KEEPER_PERIOD_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(PERIOD, Duration::from_millis);
    let mut duty = Ticks {
        dir: dir.clone(),
        period,
    };
    let slot = Slot::new(dir.join("slot"));
    let broken = std::env::var_os("KEEPER_BROKEN_STANDBY").is_some();
    let ended = run(&slot, &container, &mut duty, &mut || {
        use std::io::Write;
        let mut spawns = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(dir.join("spawns"))
            .expect("spawns");
        writeln!(spawns, "x").expect("write");
        if broken {
            // A standby that cannot live (a binary that refuses its arguments).
            spawn(Command::new("false"))
        } else {
            spawn(keeper_command(&dir, pid, start))
        }
    })
    .expect("runs");
    std::fs::write(
        dir.join(format!("ended.{}", std::process::id())),
        format!("{ended:?}"),
    )
    .expect("ended");
    std::process::exit(0);
}

struct Setup {
    dir: tempfile::TempDir,
    container: Child,
    start: u64,
    /// The keepers this test started (reaped when the test ends).
    keepers: std::cell::RefCell<Vec<Child>>,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("schedule"), b"").expect("schedule");
        let container = {
            let _spawning = spawning();
            Command::new("sleep").arg("120").spawn().expect("container")
        };
        let start = start_time(container.id() as i32).expect("start");
        Self {
            dir,
            container,
            start,
            keepers: Default::default(),
        }
    }

    fn start_keeper(&self) -> u32 {
        let _spawning = spawning();
        self.start_keeper_now()
    }

    fn start_keeper_now(&self) -> u32 {
        self.keep(spawn(keeper_command(
            self.dir.path(),
            self.container.id() as i32,
            self.start,
        )))
    }

    fn keep(&self, child: oci_macvlan_keeper::Result<Child>) -> u32 {
        let child = child.expect("spawns");
        let pid = child.id();
        self.keepers.borrow_mut().push(child);
        pid
    }

    /// Waits for the keeper `pid` this test started to end.
    fn reap(&self, pid: u32) -> std::process::ExitStatus {
        let mut keepers = self.keepers.borrow_mut();
        let at = keepers.iter().position(|c| c.id() == pid).expect("ours");
        keepers.remove(at).wait().expect("waits")
    }

    /// A keeper whose duty acts only every minute: nothing wakes it but its pidfds.
    fn start_idle_keeper(&self) -> u32 {
        self.start_keeper_with(&[("KEEPER_PERIOD_MS", "60000")])
    }

    fn start_keeper_with(&self, env: &[(&str, &str)]) -> u32 {
        let _spawning = spawning();
        let mut cmd = keeper_command(self.dir.path(), self.container.id() as i32, self.start);
        cmd.envs(env.iter().copied());
        self.keep(spawn(cmd))
    }

    fn spawns(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("spawns"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    fn slot(&self) -> Slot {
        Slot::new(self.dir.path().join("slot"))
    }

    fn acts(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.path().join("acts"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    }

    /// Waits for `what` up to `limit`.
    fn until(&self, limit: Duration, what: &str, mut ok: impl FnMut(&Self) -> bool) {
        let t = Instant::now();
        while !ok(self) {
            assert!(t.elapsed() < limit, "not within {limit:?}: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Both roles held, each by a keeper of its own, as `/proc/locks` lists them: never by
    /// taking a lock, which a keeper trying it at that instant would take for another keeper's
    /// (and leave). The active keeper tries the standby's lock itself before it starts a
    /// standby: held by the active's pid, that lock is no standby.
    fn paired(&self) -> bool {
        match (self.holder("active.lock"), self.holder("standby.lock")) {
            (Some(active), Some(standby)) => active != standby,
            _ => false,
        }
    }
}

impl Setup {
    /// The pid that holds the slot's lock `name`, if one does.
    fn holder(&self, name: &str) -> Option<String> {
        flock_holder(&self.dir.path().join("slot").join(name))
    }
}

/// The pid that holds a `flock` on the file at `path`, if one does: `/proc/locks` names the
/// file by its device (major and minor in hex) and inode
/// (`1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF`).
fn flock_holder(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let dev = meta.dev();
    let id = format!(
        "{:02x}:{:02x}:{}",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev),
        meta.ino()
    );
    std::fs::read_to_string("/proc/locks")
        .expect("/proc/locks")
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&id.as_str()))
                .then(|| fields.get(4).map(|pid| (*pid).to_owned()))
                .flatten()
        })
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.container.kill();
        let _ = self.container.wait();
        // Keepers end with their container.
        for mut keeper in self.keepers.borrow_mut().drain(..) {
            let _ = keeper.wait();
        }
    }
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
}

fn kill(pid: i32) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)
        .expect("kill");
}

#[test]
fn a_pair_forms_and_a_killed_active_keeper_loses_no_act() {
    let s = Setup::new();
    let first = s.start_keeper();
    s.until(Duration::from_secs(10), "a pair and two acts", |s| {
        s.paired() && s.acts().len() >= 2
    });
    let active = s.slot().active_pid().expect("recorded");
    kill(active);
    if active as u32 == first {
        s.reap(first);
    }
    let before = s.acts().len();
    let killed = Instant::now();
    // The standby takes over at once: the next act comes on schedule, by another process.
    s.until(PERIOD * 3, "an act by the new active keeper", |s| {
        s.acts().len() > before && *s.acts().last().expect("an act") != active
    });
    assert!(killed.elapsed() < PERIOD * 3);
    s.until(Duration::from_secs(5), "a new standby", |s| s.paired());
    assert_ne!(s.slot().active_pid(), Some(active));
}

#[test]
fn a_killed_standby_is_replaced_and_a_third_keeper_leaves() {
    let s = Setup::new();
    s.start_idle_keeper();
    s.until(Duration::from_secs(10), "a pair", |s| s.paired());
    let active = s.slot().active_pid().expect("recorded");
    // The standby: the process that holds the standby's lock.
    let standby: i32 = s
        .holder("standby.lock")
        .and_then(|pid| pid.parse().ok())
        .expect("a standby");
    assert_ne!(standby, active);
    kill(standby);
    s.until(Duration::from_secs(2), "the standby gone", |_| {
        !alive(standby)
    });
    // Not the 10 s recheck nor an act (a minute away): the standby's pidfd woke the keeper.
    // A new one: a live keeper other than the active and the one killed holds the role.
    s.until(Duration::from_secs(3), "a new standby", |s| {
        s.paired()
            && s.holder("standby.lock")
                .and_then(|pid| pid.parse::<i32>().ok())
                .is_some_and(|pid| pid != standby && alive(pid))
    });
    let third = s.start_keeper();
    assert!(s.reap(third).success());
    let ended: Vec<String> = std::fs::read_dir(s.dir.path())
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().to_str().map(String::from))
        .filter(|n| n.starts_with("ended."))
        .collect();
    assert_eq!(
        ended,
        [format!("ended.{third}")],
        "only the third keeper left"
    );
    assert_eq!(
        std::fs::read_to_string(s.dir.path().join(&ended[0])).expect("ended"),
        "Taken"
    );
    assert_eq!(s.slot().active_pid(), Some(active));
    assert!(s.paired(), "the pair is whole after the third keeper left");
}

#[test]
fn both_keepers_end_with_the_container_and_with_the_duty() {
    let mut s = Setup::new();
    s.start_keeper();
    s.until(Duration::from_secs(10), "a pair", |s| s.paired());
    s.container.kill().expect("kill");
    s.container.wait().expect("reaped");
    s.until(Duration::from_secs(3), "both keepers gone", |s| {
        s.slot().take_over().expect("tries").is_some() && s.slot().standby_missing().expect("tries")
    });

    let s = Setup::new();
    s.start_keeper();
    s.until(Duration::from_secs(10), "a pair", |s| s.paired());
    std::fs::remove_file(s.dir.path().join("schedule")).expect("duty done");
    s.until(Duration::from_secs(3), "both keepers gone", |s| {
        s.slot().take_over().expect("tries").is_some() && s.slot().standby_missing().expect("tries")
    });
    let ends: Vec<String> = std::fs::read_dir(s.dir.path())
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().to_str().map(String::from))
        .filter(|n| n.starts_with("ended."))
        .map(|n| std::fs::read_to_string(s.dir.path().join(n)).expect("ended"))
        .collect();
    assert_eq!(ends, ["DutyDone", "DutyDone"]);
}

#[test]
fn the_starter_returns_at_once_and_keeps_no_pipe_of_its_open() {
    let s = Setup::new();
    // A pipe without close-on-exec, as a runtime may hand a hook: the keeper must not keep
    // its write end (a runtime reading it would wait for the keeper).
    let spawning = spawning();
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::empty()).expect("pipe");
    let t = Instant::now();
    let keeper = s.start_keeper_now();
    assert!(t.elapsed() < Duration::from_secs(1));
    drop(write);
    drop(spawning);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::fs::File::from(read).read_to_end(&mut buf);
        let _ = tx.send(());
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(5)).is_ok(),
        "the keeper kept the pipe open"
    );
    s.until(Duration::from_secs(10), "a pair", |s| s.paired());
    // It left the starter's session (a runtime killing the hook's session or group spares it),
    // and the starter's working directory.
    assert_eq!(session(keeper), keeper as i32);
    assert_ne!(session(keeper), session(std::process::id()));
    assert_eq!(
        std::fs::read_link(format!("/proc/{keeper}/cwd")).expect("cwd"),
        Path::new("/")
    );
}

/// The session of `pid` (field 6 of `/proc/PID/stat`).
fn session(pid: u32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let (_, rest) = stat.rsplit_once(')').expect("comm");
    rest.split_whitespace()
        .nth(3)
        .expect("session")
        .parse()
        .expect("a number")
}

#[test]
fn a_standby_that_cannot_live_is_not_started_in_a_loop() {
    let s = Setup::new();
    s.start_keeper_with(&[("KEEPER_BROKEN_STANDBY", "1")]);
    s.until(Duration::from_secs(10), "the active keeper", |s| {
        s.slot().active_pid().is_some() && s.spawns() >= 1
    });
    std::thread::sleep(Duration::from_secs(2));
    // One start, then the next only after the recheck (10 s).
    assert_eq!(s.spawns(), 1);
}

#[test]
fn a_duty_that_cannot_record_its_next_time_is_not_run_back_to_back() {
    let s = Setup::new();
    s.start_keeper_with(&[("KEEPER_STUCK", "1")]);
    s.until(Duration::from_secs(10), "a first act", |s| {
        !s.acts().is_empty()
    });
    std::thread::sleep(Duration::from_millis(2500));
    // Its schedule stays in the past: one act a second at most.
    let acts = s.acts().len();
    assert!((2..=5).contains(&acts), "{acts} acts in 2.5 s");
}
