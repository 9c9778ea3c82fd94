//! CORS for gRPC-Web: which origins may call, the preflight answer, and the headers a
//! browser needs to read a response (the Fetch standard's CORS protocol).

use bytes::Bytes;

use crate::h2::hpack::Header;
use crate::web::GrpcWebConfig;

/// What the server makes of a request's `Origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OriginCheck {
    /// No `Origin`: not a cross-origin browser request (curl, a native client).
    Absent,
    /// An allowed origin, echoed in `access-control-allow-origin`.
    Allowed(Bytes),
    /// Not on the allow-list: 403 before any handler runs.
    Refused,
}

/// Checks `origin` against the allow-list.
pub(crate) fn check_origin(config: &GrpcWebConfig, origin: Option<&[u8]>) -> OriginCheck {
    let Some(origin) = origin else {
        return OriginCheck::Absent;
    };
    if config.allows(origin) {
        OriginCheck::Allowed(Bytes::copy_from_slice(origin))
    } else {
        OriginCheck::Refused
    }
}

/// The protocol's own fields a browser must be allowed to read.
const EXPOSED: &str = "grpc-status,grpc-message,grpc-status-details-bin";

/// The request fields allowed when a preflight names none.
const DEFAULT_ALLOW_HEADERS: &[u8] =
    b"content-type,x-grpc-web,x-user-agent,grpc-timeout,grpc-accept-encoding";

/// The CORS fields of a response to an allowed origin: `access-control-allow-origin`,
/// `vary`, `access-control-allow-credentials` if configured, and
/// `access-control-expose-headers` naming the protocol's fields, the configured ones and every
/// field of `head` (the user's response metadata).
pub(crate) fn response_headers(
    config: &GrpcWebConfig,
    origin: &Bytes,
    head: &[Header],
    out: &mut Vec<Header>,
) {
    out.push(Header::new(
        Bytes::from_static(b"access-control-allow-origin"),
        origin.clone(),
    ));
    out.push(Header::from_static(b"vary", b"origin"));
    if config.allow_credentials {
        out.push(Header::from_static(
            b"access-control-allow-credentials",
            b"true",
        ));
    }
    let mut expose = String::from(EXPOSED);
    let names = head
        .iter()
        .map(|h| &h.name[..])
        .filter(|n| !n.starts_with(b":") && *n != b"content-type");
    for name in names {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if !expose.split(',').any(|e| e == name) {
            expose.push(',');
            expose.push_str(name);
        }
    }
    for name in &config.expose_headers {
        if !expose.split(',').any(|e| e == name) {
            expose.push(',');
            expose.push_str(name);
        }
    }
    out.push(Header::new(
        Bytes::from_static(b"access-control-expose-headers"),
        Bytes::from(expose),
    ));
}

/// The answer to a CORS preflight (`OPTIONS`) from an allowed origin: 204 with the methods
/// (POST), the request fields it asked for and how long the browser may cache the answer.
pub(crate) fn preflight(
    config: &GrpcWebConfig,
    origin: Option<&Bytes>,
    request_headers: Option<&[u8]>,
) -> Vec<Header> {
    let mut h = vec![Header::from_static(b":status", b"204")];
    let Some(origin) = origin else {
        // Not a browser's preflight: just say what this resource takes.
        h.push(Header::from_static(b"allow", b"POST, OPTIONS"));
        return h;
    };
    h.push(Header::new(
        Bytes::from_static(b"access-control-allow-origin"),
        origin.clone(),
    ));
    h.push(Header::from_static(
        b"access-control-allow-methods",
        b"POST, OPTIONS",
    ));
    // Echo what the browser asks for: the origin is trusted, and gRPC metadata is any field.
    let asked = request_headers
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_ALLOW_HEADERS);
    h.push(Header::new(
        Bytes::from_static(b"access-control-allow-headers"),
        Bytes::copy_from_slice(asked),
    ));
    h.push(Header::new(
        Bytes::from_static(b"access-control-max-age"),
        Bytes::from(config.max_age.as_secs().to_string()),
    ));
    if config.allow_credentials {
        h.push(Header::from_static(
            b"access-control-allow-credentials",
            b"true",
        ));
    }
    h.push(Header::from_static(b"vary", b"origin"));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_origin_is_allowed_by_default_and_listed_ones_only() {
        let none = GrpcWebConfig::new();
        assert_eq!(check_origin(&none, None), OriginCheck::Absent);
        assert_eq!(
            check_origin(&none, Some(b"http://a.test")),
            OriginCheck::Refused
        );
        let one = GrpcWebConfig::new().allow_origin("http://a.test:8080/");
        assert!(matches!(
            check_origin(&one, Some(b"http://a.test:8080")),
            OriginCheck::Allowed(_)
        ));
        assert!(matches!(
            check_origin(&one, Some(b"HTTP://A.test:8080")),
            OriginCheck::Allowed(_)
        ));
        assert_eq!(
            check_origin(&one, Some(b"http://a.test:8081")),
            OriginCheck::Refused
        );
        let any = GrpcWebConfig::new().allow_origin("*");
        assert!(matches!(
            check_origin(&any, Some(b"null")),
            OriginCheck::Allowed(_)
        ));
    }

    #[test]
    fn expose_headers_name_the_protocol_fields_and_the_metadata() {
        let config = GrpcWebConfig::new().expose_header("x-extra");
        let head = [
            Header::from_static(b":status", b"200"),
            Header::from_static(b"content-type", b"application/grpc-web+proto"),
            Header::from_static(b"x-user", b"1"),
        ];
        let mut out = Vec::new();
        response_headers(&config, &Bytes::from_static(b"http://a"), &head, &mut out);
        let expose = Header::find(&out, b"access-control-expose-headers").unwrap();
        assert_eq!(
            expose,
            b"grpc-status,grpc-message,grpc-status-details-bin,x-user,x-extra"
        );
        assert_eq!(
            Header::find(&out, b"access-control-allow-origin"),
            Some(&b"http://a"[..])
        );
    }
}
