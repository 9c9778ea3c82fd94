//! The server's non-blocking sockets: TCP or Unix, with or without TLS, and the write side the
//! driver hands a connection's output to ([`SocketSink`]).
//!
//! Nothing here blocks: a write the socket does not take now stays in the sink's backlog, and
//! the connection's I/O loop is asked to write it once the socket is writable.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, BytesMut};

use super::driver::{lock, Sink};
use super::poll::Waker;

/// An accepted stream socket.
pub(crate) enum Socket {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
}

impl Socket {
    pub fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => {
                let _ = s.set_nodelay(true);
                s.set_nonblocking(true)
            }
            #[cfg(unix)]
            Socket::Unix(s) => s.set_nonblocking(true),
        }
    }

    /// Shuts both directions down: the peer sees the close, and the loop sees the socket end.
    pub fn shutdown(&self) {
        let _ = match self {
            Socket::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            #[cfg(unix)]
            Socket::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }

    /// A Unix client's name as gRPC prints it: clients of a Unix socket are unnamed, so the
    /// socket they came through (`unix:/path`). TCP peers are named from `accept`.
    #[cfg(unix)]
    pub fn unix_peer(s: &std::os::unix::net::UnixStream) -> String {
        match s
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| p.to_owned()))
        {
            Some(p) => format!("unix:{}", p.display()),
            None => "unix:".to_string(),
        }
    }
}

impl Read for &Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match *self {
            Socket::Tcp(s) => (&*s).read(buf),
            #[cfg(unix)]
            Socket::Unix(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match *self {
            Socket::Tcp(s) => (&*s).write(buf),
            #[cfg(unix)]
            Socket::Unix(s) => (&*s).write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for Socket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Socket::Tcp(s) => s.as_fd(),
            Socket::Unix(s) => s.as_fd(),
        }
    }
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for Socket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        match self {
            Socket::Tcp(s) => s.as_raw_fd(),
            Socket::Unix(s) => s.as_raw_fd(),
        }
    }
}

#[cfg(windows)]
impl std::os::windows::io::AsSocket for Socket {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        match self {
            Socket::Tcp(s) => s.as_socket(),
        }
    }
}

#[cfg(windows)]
impl std::os::windows::io::AsRawSocket for Socket {
    fn as_raw_socket(&self) -> std::os::windows::io::RawSocket {
        match self {
            Socket::Tcp(s) => s.as_raw_socket(),
        }
    }
}

/// Writes one byte slice to a non-blocking socket as far as it goes; `Ok(n)` may be short.
pub(crate) fn write_some(sock: &Socket, mut buf: &[u8]) -> io::Result<usize> {
    let total = buf.len();
    let mut w = sock;
    while !buf.is_empty() {
        match w.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total - buf.len())
}

/// A backlog larger than this is given back to the allocator once written out.
const KEEP_BACKLOG_CAPACITY: usize = 16 * 1024;

/// The write side of a server connection on a non-blocking socket.
pub(crate) struct SocketSink {
    sock: Arc<Socket>,
    /// The TLS session, shared with the loop that reads (which decrypts under the same lock).
    tls: Option<Arc<Mutex<rustls::ServerConnection>>>,
    /// Bytes (TLS records on a secure port) not yet taken by the socket.
    backlog: BytesMut,
    /// Bytes written so far.
    written: u64,
    waker: Arc<Waker>,
}

impl SocketSink {
    pub fn new(
        sock: Arc<Socket>,
        tls: Option<Arc<Mutex<rustls::ServerConnection>>>,
        waker: Arc<Waker>,
    ) -> SocketSink {
        SocketSink {
            sock,
            tls,
            backlog: BytesMut::new(),
            written: 0,
            waker,
        }
    }
}

impl Sink for SocketSink {
    fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        let had_backlog = !self.backlog.is_empty();
        match &self.tls {
            None if self.backlog.is_empty() => {
                let n = write_some(&self.sock, buf)?;
                self.written += n as u64;
                if n < buf.len() {
                    self.backlog.extend_from_slice(&buf[n..]);
                    self.waker.wake();
                }
                return Ok(());
            }
            None => self.backlog.extend_from_slice(buf),
            Some(tls) => {
                let mut tls = lock(tls);
                if !buf.is_empty() {
                    tls.writer().write_all(buf)?;
                }
                let mut w = (&mut self.backlog).writer();
                while tls.wants_write() {
                    tls.write_tls(&mut w)?;
                }
            }
        }
        self.drain()?;
        if !had_backlog && !self.backlog.is_empty() {
            // The socket is full: the loop writes the rest once it is writable. (A backlog
            // that was there already is the loop's business: it asked for writability.)
            self.waker.wake();
        }
        Ok(())
    }

    fn backlog(&self) -> usize {
        self.backlog.len()
    }

    fn written(&self) -> u64 {
        self.written
    }
}

impl SocketSink {
    /// Writes as much of the backlog as the socket takes now.
    fn drain(&mut self) -> io::Result<()> {
        if self.backlog.is_empty() {
            return Ok(());
        }
        let n = write_some(&self.sock, &self.backlog)?;
        self.backlog.advance(n);
        self.written += n as u64;
        if self.backlog.is_empty() && self.backlog.capacity() > KEEP_BACKLOG_CAPACITY {
            self.backlog = BytesMut::new();
        }
        Ok(())
    }
}
