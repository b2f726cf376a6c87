//! A keeper pair for a container known by a path only (`Container::by_netns`, a CNI
//! attachment's namespace), as real processes: this test binary, run again with `WATCH_DIR`
//! set, is the keeper. Its duty acts every 300 ms, opening the watched file for the act
//! (`Container::netns`) and dropping it. A plain file stands in for the namespace: what the
//! keeper checks is the path's device and inode.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant, SystemTime},
};

use oci_macvlan_keeper::{Container, Duty, Slot, detach, run, spawn};

const PERIOD: Duration = Duration::from_millis(300);

struct Opens {
    dir: PathBuf,
}

impl Duty for Opens {
    fn next(&mut self) -> Option<SystemTime> {
        let meta = std::fs::metadata(self.dir.join("schedule")).ok()?;
        Some(meta.modified().ok()? + PERIOD)
    }

    fn act(&mut self, container: &Container) {
        use std::io::Write;
        let opened = container.netns().is_ok();
        let mut acts = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.join("acts"))
            .expect("acts");
        writeln!(acts, "{opened}").expect("write");
        std::fs::write(self.dir.join("schedule"), b"").expect("schedule");
    }
}

fn keeper_command(dir: &Path, dev: u64, ino: u64) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("exe"));
    cmd.args([
        "--exact",
        "keeper_by_path",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("WATCH_DIR", dir)
    .env("WATCH_DEV", dev.to_string())
    .env("WATCH_INO", ino.to_string());
    cmd
}

/// The keeper itself, when this binary is run as one; a no-op test otherwise.
#[test]
fn keeper_by_path() {
    let Some(dir) = std::env::var_os("WATCH_DIR").map(PathBuf::from) else {
        return;
    };
    detach().expect("detach");
    let number = |var: &str| -> u64 { std::env::var(var).expect("set").parse().expect("a number") };
    let (dev, ino) = (number("WATCH_DEV"), number("WATCH_INO"));
    let Ok(container) = Container::by_netns(&dir.join("ns"), dev, ino) else {
        std::process::exit(0);
    };
    let slot = Slot::new(dir.join("slot"));
    let mut duty = Opens { dir: dir.clone() };
    let ended = run(&slot, &container, &mut duty, &mut || {
        spawn(keeper_command(&dir, dev, ino))
    })
    .expect("runs");
    std::fs::write(
        dir.join(format!("ended.{}", std::process::id())),
        format!("{ended:?}"),
    )
    .expect("ended");
    std::process::exit(0);
}

fn until(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ends(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().to_str().map(String::from))
        .filter(|n| n.starts_with("ended."))
        .map(|n| std::fs::read_to_string(dir.join(n)).expect("ended"))
        .collect()
}

#[test]
fn a_pair_watching_a_path_acts_holds_nothing_between_acts_and_ends_when_the_path_goes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ns = dir.path().join("ns");
    std::fs::write(&ns, b"").expect("ns");
    std::fs::write(dir.path().join("schedule"), b"").expect("schedule");
    let meta = std::fs::metadata(&ns).expect("stat");
    let mut first: Child =
        spawn(keeper_command(dir.path(), meta.dev(), meta.ino())).expect("spawns");
    let slot = Slot::new(dir.path().join("slot"));
    let acts = || {
        std::fs::read_to_string(dir.path().join("acts"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect::<Vec<String>>()
    };
    until(Duration::from_secs(10), "a pair and two acts", || {
        !slot.unheld().expect("tries")
            && slot.take_over().expect("tries").is_none()
            && !slot.standby_missing().expect("tries")
            && acts().len() >= 2
    });
    assert!(acts().iter().all(|a| a == "true"), "{:?}", acts());
    // Between acts neither keeper has the file open.
    let active = slot.active_pid().expect("recorded");
    let holds = |pid: i32| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| {
                fds.flatten()
                    .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                    .filter(|target| target == &ns)
                    .count()
            })
            .unwrap_or(0)
    };
    let mut held = 0;
    for _ in 0..10 {
        held += holds(active);
        std::thread::sleep(Duration::from_millis(37));
    }
    assert!(
        held <= 1,
        "the active keeper kept the file open ({held} of 10 looks)"
    );

    // The path gone (a namespace deleted): both keepers end within a poll or two.
    std::fs::remove_file(&ns).expect("rm");
    until(Duration::from_secs(4), "both keepers gone", || {
        slot.unheld().expect("tries")
    });
    first.wait().expect("reaped");
    until(Duration::from_secs(2), "both ends written", || {
        ends(dir.path()).len() == 2
    });
    assert_eq!(ends(dir.path()), ["ContainerGone", "ContainerGone"]);
}
