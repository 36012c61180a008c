//! Peer connections: capped in number, and counting what each socket has taken, so an
//! answer holds its slot until its bytes are on their way.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Unsent bytes a peer connection's socket takes (`TCP_NOTSENT_LOWAT`): past them it takes
/// more only as bytes go out, so what it has taken is on the wire or nearly.
pub const UNSENT_LOW: u32 = 4 * 1024;
/// An answer whose connection takes nothing for this long is cut off (the connection closes:
/// its body ends short of its length), freeing the slot.
const STUCK: Duration = Duration::from_secs(30);

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

    fn add(&self, n: usize) {
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
}

impl CappedListener {
    pub fn new(inner: TcpListener, max: usize) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(max.max(1))),
        }
    }
}

/// A connection holding its slot, counting what its socket takes.
pub struct CappedStream {
    inner: TcpStream,
    _slot: OwnedSemaphorePermit,
    written: Written,
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
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
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
                            written: Written::with_segment(segment),
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
