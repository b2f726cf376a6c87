use std::{io, path::PathBuf};

use crate::{Error, Netns, Result};

/// A netlink connection bound to one network namespace for its whole life.
///
/// Must be created inside a tokio runtime: the connection task is spawned on it.
#[derive(Debug, Clone)]
pub struct Handle {
    pub(crate) inner: rtnetlink::Handle,
}

impl Handle {
    /// A handle on the caller's own network namespace.
    pub fn current() -> Result<Self> {
        let (conn, inner, _) = rtnetlink::new_connection().map_err(|source| Error::OpenSocket {
            path: PathBuf::from("/proc/self/ns/net"),
            source,
        })?;
        tokio::spawn(conn);
        Ok(Self { inner })
    }

    /// A handle on `netns`: its socket is made with the thread inside the namespace for that
    /// one call, and a netlink socket stays in the namespace it was made in.
    pub fn open(netns: &Netns) -> Result<Self> {
        let (conn, inner) = netns.run_inside(|| {
            let (conn, inner, _) =
                rtnetlink::new_connection().map_err(|source: io::Error| Error::OpenSocket {
                    path: netns.path().to_path_buf(),
                    source,
                })?;
            Ok((conn, inner))
        })?;
        tokio::spawn(conn);
        Ok(Self { inner })
    }
}
