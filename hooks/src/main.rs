//! `oci-macvlan`: the CLI and the OCI hook. The only crate that knows OCI JSON, annotations
//! and exit codes. The files of the config and state dirs are the libraries' (the core's
//! definitions, records and locks; ipam's lease store); this crate adds the journal and the
//! hooks.d file.

use std::{future::Future, path::PathBuf, process::ExitCode};

mod annotations;
mod bundle;
mod cli;
mod cni;
mod connect;
mod doctor;
mod error;
mod format;
mod generate;
mod hook;
mod install;
mod journal;
mod keeper;
mod log;
/// Read by build.rs for the man pages; here only for the test that keeps it equal to README.
#[cfg(test)]
#[allow(dead_code)]
mod man_extra;
mod network_cmd;
mod network_inspect;
mod network_ls;
mod oci;
#[cfg(test)]
mod properties;
mod state_cmd;

use cli::{Cli, Command, LogLevel};
use error::{Error, exit};

/// What every command needs.
#[derive(Debug)]
pub struct Context {
    pub config_dir: PathBuf,
    pub state_dir: PathBuf,
    pub log_level: LogLevel,
    /// `--host-id`, if given: see [`oci_macvlan_stores::HostStores::identity`].
    pub host_id: Option<String>,
}

impl Context {
    /// This host's lease stores and identity: the store policy every command passes the core.
    pub fn stores(&self) -> oci_macvlan_stores::HostStores {
        oci_macvlan_stores::HostStores::new(&self.config_dir, &self.state_dir, self.host_id.clone())
    }

    /// Refuses config and state dirs that others than root could change (they decide which
    /// addresses and links containers get, and root's hooks write in them).
    fn check_dirs(&self) -> error::Result<()> {
        oci_macvlan_macvlan::check_private_dir(&self.config_dir, "config dir")?;
        oci_macvlan_macvlan::check_private_dir(&self.state_dir, "state dir")?;
        oci_macvlan_macvlan::Records::new(&self.state_dir).settle_boot()?;
        Ok(())
    }

    /// Runs `fut` on a current-thread runtime: one process, one thread, no worker pool.
    pub fn block_on<F: Future>(&self, fut: F) -> error::Result<F::Output> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(Error::Runtime)?;
        Ok(runtime.block_on(fut))
    }
}

fn main() -> ExitCode {
    // Every file and dir is made with a fixed mode, whatever umask the runtime or the operator
    // left (files.rs sets the exact modes; this keeps LMDB's files from being group-writable).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    // A runtime runs a CNI plugin with CNI_COMMAND set and no arguments.
    if std::env::var_os("CNI_COMMAND").is_some() && std::env::args_os().len() == 1 {
        return cni::main();
    }
    let cli = match Cli::from_env() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    let ctx = Context {
        config_dir: cli.config_dir,
        state_dir: cli.state_dir,
        log_level: cli.log_level,
        host_id: cli.host_id,
    };
    // A keeper outlives the command that made its dirs: it makes none (the dirs' check below,
    // a record, lock or store it writes mid-act), so a state dir removed with all it held stays
    // removed. One whose state dir is gone already has nothing left to keep.
    if matches!(cli.command, Command::DhcpKeeper { .. }) {
        oci_macvlan_macvlan::make_no_dirs();
        if std::fs::symlink_metadata(&ctx.state_dir)
            .is_err_and(|err| err.kind() == std::io::ErrorKind::NotFound)
        {
            return ExitCode::SUCCESS;
        }
    }
    // A failed hook's line, which says what it was doing (see `Invocation::error_line`).
    let mut line = None;
    let result = match cli.command {
        Command::Install(_)
        | Command::Bundle(_)
        | Command::Doctor(_)
        | Command::Completion { .. }
        | Command::DistFiles { .. } => Ok(()),
        _ => ctx.check_dirs(),
    }
    .and_then(|()| match cli.command {
        Command::Network(command) => network_cmd::run(&ctx, command),
        Command::Hook { stage } => {
            let mut invocation = journal::Invocation::start(stage.as_deref());
            let result = hook::run(&ctx, stage.as_deref(), &mut invocation);
            invocation.record(&ctx.state_dir, &result);
            if let Err(err) = &result {
                line = Some(invocation.error_line(err));
            }
            result
        }
        Command::DhcpKeeper { container, network } => keeper::run(&ctx, &container, &network),
        Command::Verify => state_cmd::verify(&ctx),
        Command::Gc {
            forget_host: None, ..
        } => state_cmd::gc(&ctx),
        Command::Gc {
            forget_host: Some(host),
            force,
        } => state_cmd::forget_host(&ctx, &host, force),
        Command::Install(args) => install::run(&ctx, &args),
        Command::Bundle(args) => bundle::run(&ctx, &args),
        Command::Completion { shell } => generate::completion(shell),
        Command::DistFiles { dir } => generate::dist_files(&dir),
        Command::Doctor(args) => {
            doctor::Options::parse(&args.opt).and_then(|opts| doctor::run(&ctx, &opts, args.json))
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let line = line.unwrap_or_else(|| error::line(&err));
            eprintln!("oci-macvlan: error: {line}");
            ExitCode::from(err.exit_code())
        }
    }
}
