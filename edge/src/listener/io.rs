//! The accepted socket: holds its listener slot for as long as the socket lives (also after
//! an upgrade hands it to a WebSocket), and keeps the open-connections gauge.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

/// A client socket and its slot on the listener.
pub struct Guarded {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    open: IntGauge,
}

impl Guarded {
    pub fn new(stream: TcpStream, slot: OwnedSemaphorePermit, open: IntGauge) -> Self {
        open.inc();
        Self { stream, _slot: slot, open }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Waits until the peer has sent at least `expected.len()` bytes and tells whether they are
/// `expected`; the bytes stay unread for the protocol server. `Ok(false)` also when the peer
/// closed first.
pub async fn preface(io: &Guarded, expected: &[u8]) -> io::Result<bool> {
    let mut buf = [0u8; 32];
    let want = expected.len().min(buf.len());
    loop {
        io.stream.readable().await?;
        let n = match io.stream.peek(&mut buf[..want]).await {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(err),
        };
        if n == 0 || buf[..n] != expected[..n] {
            return Ok(false);
        }
        if n == want {
            return Ok(true);
        }
        // Part of it came: the rest is on its way (the caller's deadline bounds the wait).
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
