//! TCP for the control thread (HTTP, signal WebSockets, node-to-node relays) and the
//! shards (ICE over TCP): tokio's epoll sockets seen through the `futures-io` traits
//! that the HTTP, WebSocket, relay and ICE/TCP code is written against, with the read
//! timeout those callers rely on (see `runtime` for why epoll).

use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::io::{AsyncRead, AsyncWrite};
use tokio::io::{AsyncRead as _, AsyncWrite as _, ReadBuf};
use tokio::time::Sleep;

/// A listening socket.
pub struct TcpListener {
    inner: tokio::net::TcpListener,
}

impl TcpListener {
    /// Takes over a bound, listening std socket. Must run on a `runtime` thread.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            inner: tokio::net::TcpListener::from_std(listener)?,
        })
    }

    pub async fn accept(&self) -> io::Result<TcpStream> {
        let (stream, _) = self.inner.accept().await?;
        Ok(TcpStream::new(stream))
    }
}

/// A connection. A read that waits longer than the read timeout fails with `TimedOut`:
/// a client that stops sending cannot hold a task forever.
pub struct TcpStream {
    inner: tokio::net::TcpStream,
    read_timeout: Option<Duration>,
    /// Armed while a read is pending and a timeout is set.
    read_deadline: Option<Pin<Box<Sleep>>>,
}

impl TcpStream {
    fn new(inner: tokio::net::TcpStream) -> Self {
        TcpStream {
            inner,
            read_timeout: None,
            read_deadline: None,
        }
    }

    pub async fn connect(addr: &str) -> io::Result<Self> {
        Ok(TcpStream::new(tokio::net::TcpStream::connect(addr).await?))
    }

    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.peer_addr()
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on)
    }

    /// `None`: reads wait as long as it takes. Applies from the next read that waits.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a zero read timeout",
            ));
        }
        self.read_timeout = timeout;
        self.read_deadline = None;
        Ok(())
    }

    /// Half-closes the connection (`Shutdown::Write` sends a FIN).
    pub async fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        socket2::SockRef::from(&self.inner).shutdown(how)
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut read = ReadBuf::new(buf);
        match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
            Poll::Ready(result) => {
                this.read_deadline = None;
                Poll::Ready(result.map(|()| read.filled().len()))
            }
            Poll::Pending => {
                let Some(timeout) = this.read_timeout else {
                    return Poll::Pending;
                };
                let deadline = this
                    .read_deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.read_deadline = None;
                        Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "read timed out",
                        )))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::{AsyncReadExt, AsyncWriteExt};

    fn run<F: std::future::Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(f)
    }

    async fn pair() -> (TcpStream, TcpStream) {
        let std = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = std.local_addr().expect("addr").to_string();
        let listener = TcpListener::from_std(std).expect("listener");
        let client = TcpStream::connect(&addr).await.expect("connect");
        let server = listener.accept().await.expect("accept");
        (client, server)
    }

    #[test]
    fn bytes_go_both_ways_and_a_half_close_reads_as_the_end() {
        run(async {
            let (mut client, mut server) = pair().await;
            client.write_all(b"ping").await.expect("write");
            let mut buf = [0u8; 4];
            server.read_exact(&mut buf).await.expect("read");
            assert_eq!(&buf, b"ping");
            server.write_all(b"pong").await.expect("write");
            server.shutdown(Shutdown::Write).await.expect("shutdown");
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).await.expect("read to end");
            assert_eq!(rest, b"pong");
        });
    }

    #[test]
    fn a_read_that_waits_past_the_timeout_fails_and_data_resets_it() {
        run(async {
            tokio::time::pause();
            let (mut client, mut server) = pair().await;
            server
                .set_read_timeout(Some(Duration::from_secs(30)))
                .expect("timeout");
            // Data in time: the read succeeds, and the next wait starts a fresh timeout.
            client.write_all(b"a").await.expect("write");
            let mut buf = [0u8; 1];
            server.read_exact(&mut buf).await.expect("read in time");
            // Time is paused: the runtime jumps to the deadline once nothing else can run.
            let err = server.read(&mut buf).await.expect_err("times out");
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
            assert!(server.set_read_timeout(Some(Duration::ZERO)).is_err());
        });
    }
}
