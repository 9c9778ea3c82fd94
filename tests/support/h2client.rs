//! A hand-driven HTTP/2 client over a real socket, on the crate's public sans-IO
//! `Connection`: for requests our own client never sends (tests/edge.rs) or that are not gRPC
//! (tests/grpc_web.rs). Include it with `#[path = "support/h2client.rs"] mod h2client;`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use grpc_sync::h2::conn::{Connection, Event, Role};
use grpc_sync::h2::hpack::Header;
use grpc_sync::h2::settings::Config;

const WAIT: Duration = Duration::from_secs(10);

/// What a raw request got back.
#[derive(Debug, Default)]
pub struct Answer {
    pub head: Vec<Header>,
    pub body: BytesMut,
    pub trailers: Vec<Header>,
}

/// A hand-driven HTTP/2 client over a real socket.
pub struct RawClient {
    pub sock: TcpStream,
    pub conn: Connection,
}

impl RawClient {
    pub fn connect(port: u16) -> RawClient {
        let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        let mut c = RawClient {
            sock,
            conn: Connection::new(Role::Client, Config::default()),
        };
        c.flush();
        c
    }

    pub fn flush(&mut self) {
        let out = self.conn.take_output();
        self.sock.write_all(&out).unwrap();
    }

    /// Sends one request and reads until the stream ends (or is reset).
    pub fn request(&mut self, headers: &[Header], body: &[u8]) -> Answer {
        let id = self.conn.open_stream(headers, body.is_empty()).unwrap();
        if !body.is_empty() {
            assert_eq!(self.conn.send_data(id, body, true).unwrap(), body.len());
        }
        self.flush();
        let mut a = Answer::default();
        let deadline = Instant::now() + WAIT;
        let mut buf = vec![0u8; 65536];
        loop {
            assert!(Instant::now() < deadline, "no answer in time: {a:?}");
            let n = self.sock.read(&mut buf).unwrap();
            assert!(n > 0, "server closed the connection: {a:?}");
            self.conn.recv(&buf[..n], Instant::now()).unwrap();
            let mut done = false;
            while let Some(ev) = self.conn.poll_event() {
                match ev {
                    Event::Headers {
                        stream_id,
                        headers,
                        end_stream,
                    } if stream_id == id => {
                        if a.head.is_empty() {
                            a.head = headers;
                        } else {
                            a.trailers = headers;
                        }
                        done |= end_stream;
                    }
                    Event::Data {
                        stream_id,
                        data,
                        end_stream,
                    } if stream_id == id => {
                        self.conn.release_capacity(id, data.len());
                        a.body.extend_from_slice(&data);
                        done |= end_stream;
                    }
                    Event::Reset { stream_id, .. } if stream_id == id => done = true,
                    _ => {}
                }
            }
            self.flush();
            if done {
                return a;
            }
        }
    }
}
