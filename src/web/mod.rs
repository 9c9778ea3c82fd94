//! gRPC-Web on the server's own port: browsers call the same services as gRPC clients, with
//! no proxy in between.
//!
//! Turned on with [`ServerBuilder::grpc_web`](crate::server::ServerBuilder::grpc_web). The
//! listener then also takes HTTP/1.1 connections (a browser's usual `fetch`), and both HTTP/1.1
//! and HTTP/2 requests whose content-type is `application/grpc-web`,
//! `application/grpc-web+proto`, `application/grpc-web-text` or
//! `application/grpc-web-text+proto` are served as gRPC calls: the same routing, worker pool,
//! limits, deadlines and interceptors. The response carries its trailers in the body (a frame
//! whose flag byte is `0x80`), and in text mode the whole body is base64.
//!
//! Browsers can send only one request message and read a response stream, so unary and
//! server-streaming methods work; client- and bidi-streaming ones answer `UNIMPLEMENTED`.
//!
//! Cross-origin calls follow CORS: [`GrpcWebConfig::allow_origin`] lists the page origins
//! that may call (none by default; `"*"` for any). Preflights (`OPTIONS`) from them are
//! answered; a request from any other origin gets 403 before a handler runs. Requests
//! without an `Origin` (curl, native programs) are not cross-origin and are served.
//!
//! ```no_run
//! use grpc_sync::{GrpcWebConfig, Server};
//! let server = Server::builder()
//!     .grpc_web(GrpcWebConfig::new().allow_origin("http://127.0.0.1:8080"))
//!     // .add_service(...)
//!     .build();
//! server.add_insecure_port("127.0.0.1:50051")?;
//! server.start()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The wire format is gRPC's `doc/PROTOCOL-WEB.md`.

pub(crate) mod bridge;
pub(crate) mod codec;
pub(crate) mod cors;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod http1;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::h2::hpack::Header;

/// How the server takes gRPC-Web requests: the CORS policy and the HTTP/1.1 limits.
#[derive(Clone, Debug)]
pub struct GrpcWebConfig {
    /// Allowed page origins, lowercase, without a trailing slash.
    origins: Vec<String>,
    any_origin: bool,
    pub(crate) expose_headers: Vec<String>,
    pub(crate) max_age: Duration,
    pub(crate) allow_credentials: bool,
    pub(crate) idle_timeout: Duration,
}

impl Default for GrpcWebConfig {
    fn default() -> Self {
        GrpcWebConfig {
            origins: Vec::new(),
            any_origin: false,
            expose_headers: Vec::new(),
            max_age: Duration::from_secs(24 * 60 * 60),
            allow_credentials: false,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl GrpcWebConfig {
    /// gRPC-Web with no cross-origin caller allowed (add them with
    /// [`allow_origin`](Self::allow_origin)).
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets pages from `origin` call (`scheme://host[:port]`, as browsers send it in
    /// `Origin`, e.g. `http://127.0.0.1:8080`); `"*"` lets every origin call.
    ///
    /// ```
    /// let web = grpc_sync::GrpcWebConfig::new()
    ///     .allow_origin("https://admin.example.com")
    ///     .allow_origin("http://localhost:5173");
    /// # drop(web);
    /// ```
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        let origin = origin.into();
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if origin == "*" {
            self.any_origin = true;
        } else {
            self.origins.push(origin);
        }
        self
    }

    /// Lets pages from every origin call (the same as `allow_origin("*")`).
    pub fn allow_any_origin(mut self) -> Self {
        self.any_origin = true;
        self
    }

    /// Names one more response field browsers may read (`Access-Control-Expose-Headers`).
    /// The gRPC fields and the response's own metadata are always exposed; this is for
    /// fields a proxy or an interceptor adds later.
    pub fn expose_header(mut self, name: impl Into<String>) -> Self {
        self.expose_headers.push(name.into().to_ascii_lowercase());
        self
    }

    /// How long browsers may cache a preflight answer (`Access-Control-Max-Age`; default
    /// 24 h).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// Lets browsers send credentials (cookies, `Authorization`) on cross-origin calls
    /// (`Access-Control-Allow-Credentials: true`; default off).
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        self.allow_credentials = allow;
        self
    }

    /// How long an HTTP/1.1 keep-alive connection may sit between requests before the server
    /// closes it (default 60 s). HTTP/1.1 has no ping to find a vanished client.
    pub fn http1_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Whether pages from `origin` may call.
    pub(crate) fn allows(&self, origin: &[u8]) -> bool {
        if self.any_origin {
            return true;
        }
        let origin = origin.strip_suffix(b"/").unwrap_or(origin);
        self.origins
            .iter()
            .any(|o| o.as_bytes().eq_ignore_ascii_case(origin))
    }
}

/// What a request's content-type says about gRPC-Web.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WebKind {
    /// `application/grpc-web[+proto]`: binary body.
    Binary,
    /// `application/grpc-web-text[+proto]`: base64 body.
    Text,
    /// A gRPC-Web content-type with a codec other than protobuf.
    OtherCodec,
}

/// Reads a content-type: `None` if it is not gRPC-Web at all.
pub(crate) fn web_kind(ct: &[u8]) -> Option<WebKind> {
    let ct = ct.split(|&b| b == b';').next().unwrap_or(ct);
    let ct = ct.trim_ascii();
    let lower = ct.to_ascii_lowercase();
    let (text, rest) = if let Some(rest) = lower.strip_prefix(b"application/grpc-web-text") {
        (true, rest)
    } else if let Some(rest) = lower.strip_prefix(b"application/grpc-web") {
        (false, rest)
    } else {
        return None;
    };
    match rest {
        b"" | b"+proto" if text => Some(WebKind::Text),
        b"" | b"+proto" => Some(WebKind::Binary),
        _ if rest.starts_with(b"+") => Some(WebKind::OtherCodec),
        _ => None,
    }
}

/// A gRPC-Web stream's response rules, kept on its stream slot: the driver applies them to
/// what the handler sends (see `transport::driver`).
#[derive(Debug)]
pub(crate) struct WebStream {
    /// Base64 the response body.
    pub text: bool,
    /// The CORS policy and the caller's allowed origin, if the request had an `Origin`.
    pub cors: Option<(Arc<GrpcWebConfig>, Bytes)>,
}

impl WebStream {
    /// The response head (or a trailers-only response) for a browser: the gRPC-Web
    /// content-type and the CORS fields.
    pub fn head(&self, headers: &[Header]) -> Vec<Header> {
        let mut h = Vec::with_capacity(headers.len() + 4);
        for f in headers {
            if &f.name[..] == b"content-type" && f.value.starts_with(b"application/grpc") {
                h.push(Header::from_static(
                    b"content-type",
                    if self.text {
                        b"application/grpc-web-text+proto"
                    } else {
                        b"application/grpc-web+proto"
                    },
                ));
            } else {
                h.push(f.clone());
            }
        }
        if let Some((config, origin)) = &self.cors {
            cors::response_headers(config, origin, headers, &mut h);
        }
        h
    }

    /// A DATA payload as it goes on the wire: base64 in text mode (each payload padded on
    /// its own, as the protocol allows), `None` when it goes as it is.
    pub fn data(&self, data: &[u8]) -> Option<BytesMut> {
        if !self.text {
            return None;
        }
        let mut out = BytesMut::new();
        codec::base64_encode_padded(data, &mut out);
        Some(out)
    }

    /// The trailers as the body's last frame (base64 in text mode).
    pub fn trailers(&self, trailers: &[Header]) -> BytesMut {
        let mut frame = BytesMut::new();
        codec::encode_trailers(trailers, &mut frame);
        match self.data(&frame) {
            Some(text) => text,
            None => frame,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(web_kind(b"application/grpc-web"), Some(WebKind::Binary));
        assert_eq!(
            web_kind(b"application/grpc-web+proto"),
            Some(WebKind::Binary)
        );
        assert_eq!(web_kind(b"application/grpc-web-text"), Some(WebKind::Text));
        assert_eq!(
            web_kind(b"Application/gRPC-Web-Text+proto; charset=utf-8"),
            Some(WebKind::Text)
        );
        assert_eq!(
            web_kind(b"application/grpc-web+json"),
            Some(WebKind::OtherCodec)
        );
        assert_eq!(web_kind(b"application/grpc"), None);
        assert_eq!(web_kind(b"application/grpc-webx"), None);
    }
}
