use std::{ffi::OsString, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Docker-style macvlan networks for runc, crun and podman, through an OCI hook.
///
/// Containers started by runc, crun or podman get what `docker network create -d macvlan` (or
/// `-d ipvlan`) gives Docker users: their own address directly on the host's LAN or on an
/// 802.1q VLAN of it, with no bridge, no NAT, no port mapping and no daemon. `network create`
/// defines a network with Docker's flags; the runtime runs `oci-macvlan hook` when a container
/// is created (attach) and after it stops (detach), for containers whose annotations name
/// networks (`oci-macvlan.networks`).
#[derive(Debug, Parser)]
#[command(name = "oci-macvlan", version, disable_help_subcommand = true)]
pub struct Cli {
    /// Where network definitions live.
    #[arg(long, global = true, help_heading = GLOBAL, display_order = 1000, env = CONFIG_DIR_ENV, default_value = CONFIG_DIR)]
    pub config_dir: PathBuf,
    /// Where leases and endpoint records live (a tmpfs: a reboot starts clean).
    #[arg(long, global = true, help_heading = GLOBAL, display_order = 1000, env = STATE_DIR_ENV, default_value = STATE_DIR)]
    pub state_dir: PathBuf,
    /// What to print on stderr besides errors.
    #[arg(long, global = true, help_heading = GLOBAL, display_order = 1000, value_enum, default_value_t = LogLevel::Warn)]
    pub log_level: LogLevel,
    /// This host's name in stores several hosts share (etcd). Kept, with a secret, in
    /// <config-dir>/host-identity at first use (default: /etc/machine-id); once there, it must
    /// agree with that file.
    #[arg(long, global = true, help_heading = GLOBAL, display_order = 1000, env = HOST_ID_ENV)]
    pub host_id: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command line, parsed. The argument lists a runtime passes a hook
    /// (`[--config-dir D] [--state-dir D] [--log-level L] hook [STAGE]`) are read directly:
    /// clap builds its whole command tree (every subcommand and its help) before it parses, about
    /// 0.1 ms of every hook here. Anything else goes to clap, with its help, errors and
    /// suggestions.
    pub fn from_env() -> Result<Self, clap::Error> {
        let args: Vec<OsString> = std::env::args_os().collect();
        match hook_args(&args, |name| std::env::var_os(name).is_some()) {
            Some(cli) => Ok(cli),
            None => Self::try_parse_from(args),
        }
    }
}

/// The heading global options are listed under, after each command's own.
const GLOBAL: &str = "Global Options";

pub const CONFIG_DIR: &str = "/etc/oci-macvlan";
const CONFIG_DIR_ENV: &str = "OCI_MACVLAN_CONFIG_DIR";
pub const STATE_DIR: &str = "/run/oci-macvlan";
const STATE_DIR_ENV: &str = "OCI_MACVLAN_STATE_DIR";
const HOST_ID_ENV: &str = "OCI_MACVLAN_HOST_ID";
/// The environment variables clap reads for the global options.
const ENV_DIRS: [&str; 3] = [CONFIG_DIR_ENV, STATE_DIR_ENV, HOST_ID_ENV];

/// `args` (the program name first) as the hook's `Cli`, if they are nothing but the global
/// options, each once, as `--opt V` or `--opt=V`, then `hook` and at most a stage; `None` for
/// anything else, and whenever one of [`ENV_DIRS`] is set. Every list this accepts, clap parses
/// the same way (a property test in `properties.rs`); what it declines, clap decides.
pub(crate) fn hook_args(args: &[OsString], env_is_set: impl Fn(&str) -> bool) -> Option<Cli> {
    if ENV_DIRS.iter().any(|name| env_is_set(name)) {
        return None;
    }
    let mut config_dir = None;
    let mut state_dir = None;
    let mut log_level = None;
    let mut host_id = None;
    let mut rest = args.get(1..)?.iter();
    loop {
        let arg = rest.next()?.to_str()?;
        if arg == "hook" {
            break;
        }
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name, value),
            None => (arg, rest.next()?.to_str()?),
        };
        if value.is_empty() || value.starts_with('-') {
            return None;
        }
        let slot = match name {
            "--config-dir" => &mut config_dir,
            "--state-dir" => &mut state_dir,
            "--log-level" => &mut log_level,
            "--host-id" => &mut host_id,
            _ => return None,
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    let stage = match rest.next() {
        None => None,
        Some(stage) => Some(
            stage
                .to_str()
                .filter(|s| !s.is_empty() && !s.starts_with('-'))?,
        ),
    };
    if rest.next().is_some() {
        return None;
    }
    let log_level = match log_level {
        None => LogLevel::Warn,
        Some(level) => LogLevel::from_str(level, false).ok()?,
    };
    Some(Cli {
        config_dir: PathBuf::from(config_dir.unwrap_or(CONFIG_DIR)),
        state_dir: PathBuf::from(state_dir.unwrap_or(STATE_DIR)),
        log_level,
        host_id: host_id.map(str::to_owned),
        command: Command::Hook {
            stage: stage.map(str::to_owned),
        },
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// The shells `completion` knows, in clap_complete's order and spelling (the scripts are
/// generated by build.rs, which maps each to clap_complete's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Elvish,
    Fish,
    Powershell,
    Zsh,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage networks.
    ///
    /// Define, list, inspect and remove networks, and connect or disconnect running containers,
    /// with Docker's `docker network` commands and flags.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// The OCI hook: reads the container state on stdin; attaches at createRuntime/prestart,
    /// detaches at poststop.
    ///
    /// The runtime runs it with the OCI state JSON on stdin. Status `creating` or `created` (with
    /// a pid) attaches: for each network the container's `oci-macvlan.networks` annotation names,
    /// it leases addresses and creates the container's macvlan or ipvlan link straight in its
    /// network namespace; all or nothing. Status `stopped` detaches: it releases what the
    /// container's record holds. It never writes to stdout; on failure its last line on stderr
    /// is the error, and the hook journal in the state dir keeps a line per run. Give
    /// --config-dir and --state-dir in the hook's args: runtimes may clear its environment.
    Hook {
        /// The hook stage, when the runtime's status is not enough to tell (e.g. `poststop`).
        stage: Option<String>,
    },
    /// Check, read-only, that leases, networks and endpoint records agree; exit 6 if not.
    ///
    /// Every lease on a defined network, inside one of its subnets and not reserved; one lease
    /// per interface, network and family; a record for every container holding leases and a
    /// lease for every record; the store's index of free addresses; for each network with
    /// host access, its host link and its routes. Prints `ok: …`, or each problem on stdout.
    Verify,
    /// Release what containers that are gone still hold (decided from the pid, its start time and
    /// the namespace recorded at attach; a container it cannot judge keeps its leases), and
    /// repair the host links and routes of networks with host_access. Exits 1 if a lease store
    /// does not answer or a network's host access cannot be repaired, once the rest is done.
    ///
    /// Takes each container's lock, so it never judges one an attach is writing; removes what a
    /// killed hook can leave, and the slots of DHCP renewers killed together; starts a live
    /// container's DHCP renewer again when all its keepers were killed. Safe at any time and
    /// twice: the Debian package's timer runs it every 15 minutes.
    Gc {
        /// Instead: release every lease host ID holds in the shared (etcd) stores of the
        /// networks defined here, and its claim of the id: for a host gone for good, never
        /// automatic. Refused for this host and for a host seen within the last hour (its gc
        /// timer and its writes refresh its claim).
        #[arg(long, value_name = "ID")]
        forget_host: Option<String>,
        /// With --forget-host: do not ask for confirmation.
        #[arg(short, long, requires = "forget_host")]
        force: bool,
    },
    /// Check that this host can give containers macvlan legs: kernel, link kinds (tried in a
    /// scratch namespace), and with -o parent=IF that parent. Exits 1 if a check fails.
    ///
    /// Each check is a line: ok, info, warn or fail, with what to do about a warning or a
    /// failure. With a parent: whether it is up, promiscuous, shared by networks of other
    /// drivers, and for networks with host access their host link, routes, reverse-path filter
    /// and forwarding; and whether a DHCP and a DHCPv6 server answer on it: one DISCOVER and one
    /// SOLICIT, sent at once from a scratch namespace on a macvlan of the parent, 3 s each unless
    /// -o dhcp_timeout= says otherwise. No lease is taken (no REQUEST), and no server answering
    /// is a warning, not a failure.
    Doctor(DoctorArgs),
    /// Install the podman hooks.d file (oci-hooks(5)) that runs this hook for containers
    /// annotated with oci-macvlan.networks, with this invocation's --config-dir and --state-dir.
    ///
    /// Written to a temporary file and renamed into place; running it again replaces it. The
    /// Debian package installs the same file where podman looks by default, so a packaged host
    /// needs no `install`.
    Install(InstallArgs),
    /// Wire a runc or crun bundle's config.json: the hook and the annotations.
    ///
    /// Adds the hook at createRuntime (attach) and poststop (detach), running this binary with
    /// this invocation's --config-dir and --state-dir in its args, and the annotations that
    /// opt the container in: the networks in order (eth0, eth1, …) and a static address or MAC
    /// on the first. Run again, it replaces what it wrote; --remove takes it all out. The rest
    /// of the file is kept as it is. (Podman reads the hooks.d file instead: see install.)
    Bundle(BundleArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// The scripts complete commands, flags and the names of defined networks (asked of
    /// `oci-macvlan network ls` with the --config-dir the command line gives).
    Completion {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Renews the DHCP lease of a container on a network until the container ends (started by
    /// the hook after a DHCP attach; never by hand).
    #[command(hide = true)]
    DhcpKeeper {
        /// The container.
        #[arg(long)]
        container: String,
        /// The DHCP network.
        #[arg(long)]
        network: String,
    },
    /// Write what a package installs besides the binary into DIR: man pages (man/), completions
    /// (completions/) and the podman hooks.d file for /usr/bin/oci-macvlan (hooks.d/). Used by
    /// `cargo xtask dist`.
    #[command(hide = true)]
    DistFiles { dir: PathBuf },
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// parent=IF: also check this parent (plain or NAME.VID); dhcp_timeout=DURATION: how long
    /// each DHCP probe of the parent waits (default 3s, at most 60s; 0s: no probe). Repeat -o
    /// for both.
    #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE")]
    pub opt: Vec<String>,
    /// Print JSON for scripts instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// A network the container joins; repeat (or NET,NET) for several, in order.
    #[arg(long = "network", value_name = "NETWORK")]
    pub networks: Vec<String>,
    /// A static IPv4 address on the first network.
    #[arg(long)]
    pub ip: Option<String>,
    /// A static IPv6 address on the first network.
    #[arg(long)]
    pub ip6: Option<String>,
    /// A static MAC on the first network.
    #[arg(long)]
    pub mac: Option<String>,
    /// Take the hooks and every oci-macvlan annotation out of the file instead.
    #[arg(long, conflicts_with_all = ["networks", "ip", "ip6", "mac"])]
    pub remove: bool,
    /// The oci-macvlan binary the hooks run (default: this one).
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// The bundle's directory or its config.json.
    #[arg(default_value = ".")]
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The hooks directory podman reads.
    #[arg(long, default_value = "/etc/containers/oci/hooks.d")]
    pub hooks_dir: PathBuf,
    /// The oci-macvlan binary the hook runs (default: this one).
    #[arg(long)]
    pub binary: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Define a network.
    ///
    /// Docker's flags with Docker's meaning: subnets, gateways, ranges and auxiliary addresses
    /// (several, IPv4 and IPv6), the parent link and driver options. The definition is checked
    /// whole (parent, modes, overlaps, other networks on the parent) and written to the config
    /// dir; a parent like `eth0.50` is an 802.1q VLAN made at the first attach.
    Create(CreateArgs),
    /// List networks.
    ///
    /// A table of ID, name, driver, parent, mode and subnets, or what --format asks for.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks as JSON, or through a Go template.
    ///
    /// Docker's fields (Name, Id, Driver, IPAM, Containers, Options, …) with each container's
    /// address and MAC, how much of each range is used, and host access.
    Inspect(InspectArgs),
    /// Remove networks that no container uses.
    ///
    /// A network a container still holds an address on is refused (exit 5); each network is
    /// removed or refused on its own, as in Docker.
    #[command(alias = "remove")]
    Rm {
        /// The networks: each a name, a full id or the start of one id.
        #[arg(required = true, value_name = "NETWORK")]
        names: Vec<String>,
        /// Do not fail for a network that does not exist, nor for one whose etcd cluster does
        /// not answer: its definition and host link are removed, and what the cluster holds
        /// of it is left there (said on stderr) for `gc`; until gc finds nothing of it left, its
        /// name and subnets stay taken.
        #[arg(short, long)]
        force: bool,
    },
    /// Remove every network that no container uses.
    ///
    /// Lists the networks it would remove and asks first, unless -f; a network a container
    /// holds an address on is kept. Prints the name of each network removed.
    Prune(PruneArgs),
    /// Give a running container a leg on one more network.
    ///
    /// The same attach as the hook's: the same leases, record, lock and rollback. A container
    /// the hook attached is found through its record; any other with --pid, --netns or
    /// --runtime. The new interface is the first free ethN, or --ifname.
    Connect(ConnectArgs),
    /// Take a running container's leg on a network away.
    ///
    /// Deletes the link the record proves the container's own, releases its addresses and
    /// takes the network off the record.
    Disconnect(DisconnectArgs),
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only the network IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// KEY=VALUE: name and id (regular expressions, as in Docker: name=^lan$ is that name
    /// alone, id=77dd a part of the id), driver (exact), label=KEY or label=KEY=VALUE; a name,
    /// id or driver given twice matches either value, labels must all match, and different
    /// keys must all match.
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// A Go template per network ({{.ID}} {{.Name}} {{.Driver}} {{.Scope}} {{.IPv6}}
    /// {{.Internal}} {{.Parent}} {{.Mode}} {{.Subnets}} {{.CreatedAt}}), `table TEMPLATE` for
    /// columns under a header, or `json`.
    #[arg(long)]
    pub format: Option<String>,
    /// Full network IDs.
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The networks' names.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// A Go template per network over `inspect`'s JSON ({{.Name}}, {{json .IPAM}},
    /// {{range .Containers}}{{.IPv4Address}} {{end}}), or `json` for one line each.
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Where the running container's network namespace is: at most one of these; none for a
/// container the hook attached (its record says where it runs).
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub struct Locate {
    /// The container's process: its namespace is /proc/PID/ns/net.
    #[arg(long)]
    pub pid: Option<i32>,
    /// A network namespace path the container runs in (e.g. /run/netns/NAME).
    #[arg(long)]
    pub netns: Option<PathBuf>,
    /// The container's runtime, whose state gives its process.
    #[arg(long, value_enum)]
    pub runtime: Option<Runtime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    Runc,
    Crun,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The network's name.
    pub network: String,
    /// The container's id (as its runtime names it).
    pub container: String,
    /// A static IPv4 address.
    #[arg(long)]
    pub ip: Option<String>,
    /// A static IPv6 address.
    #[arg(long)]
    pub ip6: Option<String>,
    /// The MAC address of the new link.
    #[arg(long)]
    pub mac: Option<String>,
    /// The interface name in the container (default: the first free ethN).
    #[arg(long)]
    pub ifname: Option<String>,
    #[command(flatten)]
    pub locate: Locate,
    /// The runtime's state dir (with --runtime; default: the runtime's own, /run/runc or /run/crun).
    #[arg(long)]
    pub root: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// The network's name.
    pub network: String,
    /// The container's id (as its runtime names it).
    pub container: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Network name.
    pub name: String,
    /// Driver: macvlan or ipvlan.
    #[arg(short = 'd', long, default_value = "macvlan")]
    pub driver: String,
    /// Subnet in CIDR form; repeat for several (IPv4 and IPv6).
    #[arg(long)]
    pub subnet: Vec<String>,
    /// Gateway of a subnet; repeat, matched to subnets by containment.
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Allocate container addresses from this sub-range of a subnet.
    #[arg(long)]
    pub ip_range: Vec<String>,
    /// NAME=IP: an address never given to a container.
    #[arg(long)]
    pub aux_address: Vec<String>,
    /// Enable IPv6 (implied by an IPv6 subnet).
    #[arg(long)]
    pub ipv6: bool,
    /// No default route for containers.
    #[arg(long)]
    pub internal: bool,
    /// Driver options: parent=IF, mtu=N, host_access=IP[,IP6] (the host's own address on the
    /// network, to reach its containers), static_ips=any|none|CIDR[,CIDR...] (the static
    /// addresses a container may ask for), address_probe=on|off (probe the LAN for a static
    /// address before taking it), ipv6_slaac=true|false (--ipam-driver dhcp --ipv6: SLAAC
    /// addresses from router advertisements too); macvlan: macvlan_mode=bridge|private|vepa|passthru|source,
    /// source_macs=MAC[,MAC...]; ipvlan: ipvlan_mode=l2|l3|l3s, ipvlan_flag=bridge|private|vepa.
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// KEY=VALUE (or KEY): metadata on the network, for `ls --filter label=…` and `inspect`;
    /// repeat for several.
    #[arg(long)]
    pub label: Vec<String>,
    /// Address manager options: etcd_endpoints=URL[,URL...] (leases shared by several hosts),
    /// etcd_prefix=/PATH, etcd_cacert=FILE, etcd_cert=FILE, etcd_key=FILE, etcd_timeout=2s;
    /// with --ipam-driver dhcp: dhcp_timeout=10s (the whole exchange's deadline).
    #[arg(long = "ipam-opt")]
    pub ipam_opt: Vec<String>,
    /// Address manager: default (our own allocator, from --subnet) or dhcp (the LAN's DHCP
    /// server; --subnet optional, then a check of its leases).
    #[arg(long = "ipam-driver", default_value = "default", value_parser = ["default", "dhcp"])]
    pub ipam_driver: String,
}
