//! The CNI protocol as a plugin speaks it (spec 1.1.0, and the result shapes of 0.3.0 to
//! 1.0.0): the environment a runtime sets ([`Env`], with `CNI_ARGS` in [`Args`]), the network
//! configuration on stdin ([`NetConf`]), the versions a plugin agrees to ([`Version`]), the
//! result it prints ([`CniResult`]) and the error it prints instead ([`Error`], [`ErrorReply`]).
//!
//! Pure: nothing here reads a file, runs a process or talks to the kernel. Every input is
//! hostile until checked, as annotations are: bounded sizes, the core's rules for container
//! ids and interface names.

#![warn(missing_docs)]

mod args;
mod chain;
mod config;
mod env;
mod error;
mod result;
mod version;

pub use args::Args;
pub use chain::chained;
pub use config::{MAX_CONFIG, NetConf, PLUGIN_TYPE, peek_version, read_bounded};
pub use env::{Command, Env};
pub use error::{Error, ErrorReply, Result, code};
pub use result::{CniResult, Interface, IpConfig, PrevResult, Route};
pub use version::{SUPPORTED, Version, version_info};
