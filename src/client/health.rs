//! Client-side health checking (gRFC A17): a `round_robin` subchannel watches its server's
//! `grpc.health.v1.Health/Watch` for the service the service config's
//! `healthCheckConfig.serviceName` names, and is picked only while the answer is SERVING.
//!
//! The watch runs on the subchannel's own connection, on the subchannel's keeper thread;
//! each answer is handed back as the iterator's next item.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use prost::Message;

use super::ResponseReader;
use crate::codec;
use crate::h2::hpack::Header;
use crate::health::{HealthCheckRequest, HealthCheckResponse, ServingStatus, WATCH_PATH};
use crate::status::Status;
use crate::transport::driver::{Shared, StreamHandle};

/// An open `Watch` call on one connection.
pub(crate) struct HealthWatch {
    reader: ResponseReader,
}

impl HealthWatch {
    /// Starts watching `service` on `conn`.
    ///
    /// # Errors
    /// UNAVAILABLE if the connection cannot take a new stream now.
    pub fn open(
        conn: &Arc<Shared>,
        service: &str,
        authority: &Bytes,
        secure: bool,
    ) -> Result<HealthWatch, Status> {
        let headers = [
            Header::from_static(b":method", b"POST"),
            Header::from_static(b":scheme", if secure { b"https" } else { b"http" }),
            Header::new(
                Bytes::from_static(b":path"),
                Bytes::from_static(WATCH_PATH.as_bytes()),
            ),
            Header::new(Bytes::from_static(b":authority"), authority.clone()),
            Header::from_static(b"content-type", b"application/grpc"),
            Header::from_static(b"te", b"trailers"),
        ];
        let mut framed = BytesMut::new();
        let request = HealthCheckRequest {
            service: service.to_string(),
        };
        codec::encode_message_with(&request, &mut framed, usize::MAX, None)?;
        let mut st = conn.lock();
        let unavailable = || Status::unavailable("the connection cannot take the health watch");
        if st.lost.is_some() || st.goaway.is_some() || !st.conn.can_open_stream() {
            return Err(unavailable());
        }
        let id = st
            .conn
            .open_stream(&headers, false)
            .map_err(|_| unavailable())?;
        st.insert_slot(id);
        let handle = StreamHandle::attach(conn.clone(), &mut st, id);
        conn.flush(st);
        handle
            .send_data(&framed, true, None)
            .map_err(|e| super::stream_status(&e))?;
        Ok(HealthWatch {
            reader: ResponseReader::new(handle, 64 * 1024, None),
        })
    }

    /// A handle that cancels the watch from another thread (a subchannel being removed).
    pub fn canceller(&self) -> StreamHandle {
        self.reader.handle.view()
    }
}

impl Iterator for HealthWatch {
    /// The next serving status, or how the call ended.
    type Item = Result<ServingStatus, Status>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(match self.reader.next_message()? {
            Ok(m) => HealthCheckResponse::decode(m)
                .map(|r| r.status())
                .map_err(|e| Status::internal(format!("bad health response: {e}"))),
            Err(s) => Err(s),
        })
    }
}
