//! The loop both clients (v4 and v6) run over a link's socket under one deadline: send what
//! the machine asks, wait until its deadline or the exchange's, read what came, skip (and
//! count) a refused answer. A flood cannot hold the exchange past its deadline, nor the machine
//! past its own (a retransmission, T1, T2, the lease's end). What differs between the two is
//! behind [`Machine`] (the client's calls and errors) and [`Transport`] (the socket's).

use std::{
    io,
    time::{Duration, Instant, SystemTime},
};

/// One step of a machine, either version's `Step` field for field.
pub(crate) struct Turn<O, E> {
    /// A message to send now.
    pub(crate) send: Option<O>,
    /// Something that happened.
    pub(crate) event: Option<E>,
    /// When to tick at the latest.
    pub(crate) deadline: SystemTime,
}

/// What the loop needs of a client machine.
pub(crate) trait Machine {
    /// A message to send.
    type Out;
    /// What the caller waits for.
    type Event;
    /// Why an answer was refused.
    type Refused;
    /// The client's error.
    type Error;
    /// The machine's next step at `now`.
    fn tick(&mut self, now: SystemTime) -> Result<Turn<Self::Out, Self::Event>, Self::Error>;
    /// The machine's step on `message` (`len` long before the buffer cut it) at `now`.
    fn receive(
        &mut self,
        message: &[u8],
        len: usize,
        now: SystemTime,
    ) -> Result<Turn<Self::Out, Self::Event>, Self::Error>;
    /// Told after each message the loop sent, before it waits for the answer: time the
    /// server takes, which a caller may use (nothing by default).
    fn sent(&mut self) {}
    /// The refusal `error` is, or `error` itself when it is not one.
    fn refusal(error: Self::Error) -> Result<Self::Refused, Self::Error>;
    /// The socket of `link` failed.
    fn socket_error(link: &str, source: io::Error) -> Self::Error;
    /// Nothing taken on `link` in `timeout`; `refused` answers skipped, the last for `last`.
    fn timeout(
        link: &str,
        timeout: Duration,
        refused: usize,
        last: Option<Self::Refused>,
    ) -> Self::Error;
}

/// The error half of a [`Machine`] impl, for a client whose `Error` (and `Refused`) in scope
/// has `Refused(_)`, `Socket { link, source }` and `Timeout { link, timeout, refused, last, on_host }`:
/// v4's and v6's both.
macro_rules! machine_errors {
    ($port:expr) => {
        fn refusal(error: Error) -> Result<Refused> {
            match error {
                Error::Refused(why) => Ok(why),
                other => Err(other),
            }
        }
        fn socket_error(link: &str, source: io::Error) -> Error {
            Error::Socket {
                link: link.to_owned(),
                source,
            }
        }
        fn timeout(link: &str, timeout: Duration, refused: usize, last: Option<Refused>) -> Error {
            Error::Timeout {
                link: link.to_owned(),
                timeout,
                refused,
                last,
                on_host: crate::here::timeout_note($port),
            }
        }
    };
}
pub(crate) use machine_errors;

/// The `tick` and `receive` of a wrapper that notes what its client asks for: its `client` is
/// the machine it wraps, and its `noted(turn, now, answered)` looks at the client's new state
/// (`answered`: a message read moved it there).
macro_rules! noting_steps {
    () => {
        fn tick(&mut self, now: SystemTime) -> Result<Turn<Self::Out, Self::Event>> {
            let turn = Machine::tick(&mut *self.client, now)?;
            self.noted(turn, now, false)
        }
        fn receive(
            &mut self,
            message: &[u8],
            len: usize,
            now: SystemTime,
        ) -> Result<Turn<Self::Out, Self::Event>> {
            let turn = Machine::receive(&mut *self.client, message, len, now)?;
            self.noted(turn, now, true)
        }
    };
}
pub(crate) use noting_steps;

/// What the loop needs of its socket, `N` bytes read at most: a seam, so that a test can
/// flood the loop without a link.
pub(crate) trait Transport<O, const N: usize> {
    /// The link's name.
    fn name(&self) -> &str;
    /// Sends `out`.
    fn send(&self, out: &O) -> io::Result<()>;
    /// Waits for something to read, until `until` at most.
    fn wait(&self, until: Instant) -> io::Result<()>;
    /// The next message queued and its length before `buf` cut it, if any.
    fn next<'b>(&self, buf: &'b mut [u8; N]) -> io::Result<Option<(&'b [u8], usize)>>;
}

/// Runs `client` from `step` on `socket` until an event comes or `timeout` passes.
pub(crate) fn run<M: Machine, const N: usize>(
    client: &mut M,
    socket: &impl Transport<M::Out, N>,
    mut step: Turn<M::Out, M::Event>,
    timeout: Duration,
) -> Result<M::Event, M::Error> {
    let name = socket.name();
    let failed = |source| M::socket_error(name, source);
    let end = Instant::now() + timeout;
    let mut buf = Box::new([0u8; N]);
    let (mut refused, mut last) = (0, None);
    loop {
        if let Some(out) = &step.send {
            socket.send(out).map_err(failed)?;
            client.sent();
        }
        if let Some(event) = step.event.take() {
            return Ok(event);
        }
        let due = step
            .deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        socket.wait(end.min(Instant::now() + due)).map_err(failed)?;
        let mut next = None;
        while let Some((message, len)) = socket.next(&mut buf).map_err(failed)? {
            match client.receive(message, len, SystemTime::now()) {
                Ok(taken) => {
                    next = Some(taken);
                    break;
                }
                Err(error) => {
                    last = Some(M::refusal(error)?);
                    refused += 1;
                }
            }
            // Messages faster than they are read must not keep the machine from its own
            // deadline: a retransmission, T1, T2, the lease's end are the next tick's.
            if Instant::now() >= end || SystemTime::now() >= step.deadline {
                break;
            }
        }
        if Instant::now() >= end && next.is_none() {
            return Err(M::timeout(name, timeout, refused, last));
        }
        step = match next {
            Some(step) => step,
            None => client.tick(SystemTime::now())?,
        };
    }
}
