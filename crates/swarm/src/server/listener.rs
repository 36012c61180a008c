//! Peer connections: capped in number, and counting what each socket has taken, so an
//! answer holds its slot until its bytes are on their way.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Unsent bytes a peer connection's socket takes (`TCP_NOTSENT_LOWAT`): past them it takes
/// more only as bytes go out, so what it has taken is on the wire or nearly.
pub const UNSENT_LOW: u32 = 4 * 1024;
/// An answer whose connection takes nothing for this long is cut off (the connection closes:
/// its body ends short of its length), freeing the slot.
const STUCK: Duration = Duration::from_secs(30);

/// Connections one address may hold: a household or office behind one NAT, not one machine
/// holding every slot. Loopback (this machine's own listeners) is not capped.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 32;

/// When a connection is closed for saying nothing.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A new connection must have sent its first bytes by then.
    pub first_request: Duration,
    /// A connection on which nothing is read or written for this long is closed (a have
    /// stream repeats its last record every 30 s, a long poll answers by then, and askers'
    /// pools let idle connections go after 90 s, before this closes them under an ask).
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            first_request: Duration::from_secs(10),
            idle: Duration::from_secs(120),
        }
    }
}

/// Connections held per remote address.
#[derive(Debug, Default)]
struct PerAddress(std::sync::Mutex<HashMap<IpAddr, usize>>);

impl PerAddress {
    /// Takes a place for a connection from `ip`, if it has one left.
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressPlace> {
        let ip = ip.to_canonical();
        if !ip.is_loopback() {
            let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let n = held.entry(ip).or_insert(0);
            if *n >= max {
                return None;
            }
            *n += 1;
        }
        Some(AddressPlace {
            counts: self.clone(),
            ip,
        })
    }
}

/// A connection's place among its address's; given back when the connection closes.
#[derive(Debug)]
struct AddressPlace {
    counts: Arc<PerAddress>,
    ip: IpAddr,
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        if self.ip.is_loopback() {
            return;
        }
        let mut held = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// A connection accepted by [`CappedListener`]: its remote address, and what its socket has
/// taken so far.
#[derive(Debug, Clone)]
pub struct PeerAddr(pub SocketAddr, pub Written);

/// Bytes a connection's socket has accepted from the HTTP server (which buffers answers
/// itself: an answer handed over is not yet sent).
#[derive(Debug, Clone, Default)]
pub struct Written(Arc<WrittenInner>);

#[derive(Debug, Default)]
struct WrittenInner {
    total: AtomicU64,
    /// The connection has closed: nothing more will be taken.
    closed: AtomicBool,
    more: Notify,
    /// The connection's segment size (TCP's MSS; 0: unknown).
    segment: u32,
}

impl Written {
    /// For a connection whose segments carry `segment` bytes (0: unknown).
    /// The connection's segment size (TCP's MSS; 0: unknown).
    pub(super) fn segment(&self) -> u32 {
        self.0.segment
    }

    fn with_segment(segment: u32) -> Self {
        Self(Arc::new(WrittenInner {
            segment,
            ..WrittenInner::default()
        }))
    }

    pub fn total(&self) -> u64 {
        self.0.total.load(Ordering::Acquire)
    }

    pub(super) fn add(&self, n: usize) {
        self.0.total.fetch_add(n as u64, Ordering::AcqRel);
        self.0.more.notify_waiters();
    }

    fn close(&self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.more.notify_waiters();
    }

    /// Waits until the socket has taken `target` bytes in all; false if the connection
    /// closed first, or took nothing for [`STUCK`] (an asker that stopped reading).
    pub(super) async fn reach(&self, target: u64) -> bool {
        loop {
            let more = self.0.more.notified();
            tokio::pin!(more);
            // Registered before the check, so a write in between is not missed.
            more.as_mut().enable();
            if self.total() >= target {
                return true;
            }
            if self.0.closed.load(Ordering::Acquire) {
                return false;
            }
            if tokio::time::timeout(STUCK, more).await.is_err() {
                return false;
            }
        }
    }
}

/// A TCP listener that holds at most `max` connections: accepting waits for a free slot, and
/// each slot is freed when its connection closes.
pub struct CappedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    per_address: Arc<PerAddress>,
    timeouts: Timeouts,
}

impl CappedListener {
    pub fn new(inner: TcpListener, max: usize, timeouts: Timeouts) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(max.max(1))),
            per_address: Arc::default(),
            timeouts,
        }
    }
}

/// A connection holding its slot, counting what its socket takes, closed when it says
/// nothing for too long.
pub struct CappedStream {
    inner: TcpStream,
    _slot: OwnedSemaphorePermit,
    _place: AddressPlace,
    written: Written,
    idle: Duration,
    /// When the connection is closed unless a byte is read or written before.
    deadline: Pin<Box<Sleep>>,
}

impl CappedStream {
    /// Something moved: the connection is not idle.
    fn active(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
    }
}

impl Drop for CappedStream {
    fn drop(&mut self) {
        // Answers still waiting for their last bytes to be taken give up at once.
        self.written.close();
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.active();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.deadline.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(std::io::ErrorKind::TimedOut.into()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            this.written.add(*n);
            this.active();
        }
        r
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            this.written.add(*n);
            this.active();
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok(slot) = self.slots.clone().acquire_owned().await else {
                // The semaphore is never closed; wait rather than spin if it were.
                std::future::pending::<()>().await;
                continue;
            };
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    // Past its address's share the connection is closed at once (dropped).
                    let Some(place) = self
                        .per_address
                        .take(addr.ip(), MAX_CONNECTIONS_PER_ADDRESS)
                    else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    // Little unsent data in the kernel, so an answer holds its blob slot
                    // until its bytes are nearly on the wire (see `paced`): past the slots,
                    // askers get `503` and go elsewhere instead of queueing seconds behind a
                    // slow uplink. (Linux and Android; elsewhere the kernel's buffer counts.)
                    #[cfg(any(target_os = "linux", target_os = "android"))]
                    let _ = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(UNSENT_LOW);
                    let segment = socket2::SockRef::from(&stream).tcp_mss().unwrap_or(0);
                    return (
                        CappedStream {
                            inner: stream,
                            _slot: slot,
                            _place: place,
                            written: Written::with_segment(segment),
                            idle: self.timeouts.idle,
                            deadline: Box::pin(tokio::time::sleep(self.timeouts.first_request)),
                        },
                        addr,
                    );
                }
                // Out of file descriptors and the like: back off briefly (as axum does).
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl Connected<axum::serve::IncomingStream<'_, CappedListener>> for PeerAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, CappedListener>) -> Self {
        PeerAddr(*stream.remote_addr(), stream.io().written.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_address_gets_its_share_of_connections_and_loopback_any() {
        let counts = Arc::new(PerAddress::default());
        let far: IpAddr = "203.0.113.7".parse().unwrap();
        let places: Vec<_> = (0..3).map(|_| counts.take(far, 3)).collect();
        assert!(places.iter().all(Option::is_some));
        assert!(counts.take(far, 3).is_none(), "a fourth from one address");
        // The same address as IPv4-mapped IPv6 is the same address.
        assert!(counts
            .take("::ffff:203.0.113.7".parse().unwrap(), 3)
            .is_none());
        assert!(counts.take("198.51.100.1".parse().unwrap(), 3).is_some());
        drop(places);
        assert!(
            counts.take(far, 3).is_some(),
            "places come back when connections close"
        );
        let local: Vec<_> = (0..100)
            .map(|_| counts.take("127.0.0.1".parse().unwrap(), 3))
            .collect();
        assert!(local.iter().all(Option::is_some));
    }
}
