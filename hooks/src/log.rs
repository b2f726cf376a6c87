//! One line per event on stderr. A runtime may discard stdout and show stderr only on failure,
//! so nothing here ever writes to stdout.

use std::fmt::Arguments;

use crate::{Context, cli::LogLevel};

fn emit(ctx: &Context, level: LogLevel, label: &str, args: Arguments<'_>) {
    if ctx.log_level >= level {
        eprintln!("oci-macvlan: {label}: {args}");
    }
}

pub fn info(ctx: &Context, args: Arguments<'_>) {
    emit(ctx, LogLevel::Info, "info", args);
}

pub fn debug(ctx: &Context, args: Arguments<'_>) {
    emit(ctx, LogLevel::Debug, "debug", args);
}

/// One info line per lease a detach or disconnect of `container` released.
pub fn released(ctx: &Context, container: &str, released: &[oci_macvlan_ipam::Lease]) {
    for lease in released {
        info(
            ctx,
            format_args!(
                "container {container}: released {} on {}",
                lease.ip, lease.network
            ),
        );
    }
}
