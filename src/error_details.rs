//! Rich error details: the standard `google.rpc` error messages, carried in a status's
//! `grpc-status-details-bin` as a `google.rpc.Status`.
//!
//! The model of Google's APIs (<https://google.aip.dev/193>), and what grpcio-status
//! (`rpc_status.to_status`, `rpc_status.from_call`), grpc-go's `status.WithDetails` and
//! tonic-types read and write: the trailer holds a serialized `google.rpc.Status` whose code
//! and message repeat the call's, and whose `details` are `google.protobuf.Any`s packing the
//! messages of `google/rpc/error_details.proto` (type URLs
//! `type.googleapis.com/google.rpc.BadRequest`, …).
//!
//! ```
//! use grpc_sync::error_details::{BadRequest, ErrorDetails, FieldViolation};
//! use grpc_sync::{Code, Status};
//!
//! // A handler answers with details…
//! let status = Status::with_error_details(
//!     Code::InvalidArgument,
//!     "bad name",
//!     ErrorDetails::new().with(BadRequest {
//!         field_violations: vec![FieldViolation::new("name", "must not be empty")],
//!     }),
//! );
//! // …and the client reads them back from the `Status` it got.
//! let details = status.error_details().unwrap();
//! assert_eq!(details.bad_request().unwrap().field_violations[0].field, "name");
//! ```

use std::collections::HashMap;
use std::time::Duration;

use prost::Message;

use crate::status::{Code, Status};

/// The prefix of every standard type URL.
pub const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// `google.protobuf.Any`: a message and the URL naming its type.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Any {
    /// `type.googleapis.com/<full message name>`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The serialized message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

impl Any {
    /// Packs `msg` under its standard type URL.
    pub fn pack<M: Detail>(msg: &M) -> Any {
        Any {
            type_url: format!("{TYPE_URL_PREFIX}{}", M::TYPE_NAME),
            value: msg.encode_to_vec(),
        }
    }

    /// The message inside, if it is an `M` (by its type URL's last path segment, as the
    /// protobuf runtimes compare them).
    ///
    /// # Errors
    /// The decode error if the URL names `M` but the bytes are not one.
    pub fn unpack<M: Detail>(&self) -> Result<Option<M>, prost::DecodeError> {
        let name = self.type_url.rsplit('/').next().unwrap_or("");
        if name != M::TYPE_NAME {
            return Ok(None);
        }
        M::decode(&self.value[..]).map(Some)
    }
}

/// `google.rpc.Status`: what `grpc-status-details-bin` holds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// The status code, as in `grpc-status`.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// The message, as in `grpc-message`.
    #[prost(string, tag = "2")]
    pub message: String,
    /// The details, each packed in an `Any`.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct ProtoDuration {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds beyond `seconds` (same sign, under one second).
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl From<Duration> for ProtoDuration {
    fn from(d: Duration) -> ProtoDuration {
        ProtoDuration {
            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: d.subsec_nanos() as i32,
        }
    }
}

impl ProtoDuration {
    /// As a [`Duration`]; negative durations read as zero.
    pub fn to_duration(self) -> Duration {
        if self.seconds < 0 || self.nanos < 0 {
            return Duration::ZERO;
        }
        Duration::new(self.seconds as u64, 0) + Duration::from_nanos(self.nanos as u64)
    }
}

/// A message of `error_details.proto`: its full name is its type URL's last segment.
pub trait Detail: Message + Default + Sized {
    /// The full protobuf name, `google.rpc.BadRequest`.
    const TYPE_NAME: &'static str;
    /// Wraps it as an [`ErrorDetail`].
    fn into_detail(self) -> ErrorDetail;
}

macro_rules! detail {
    ($ty:ident, $name:literal) => {
        impl Detail for $ty {
            const TYPE_NAME: &'static str = $name;
            fn into_detail(self) -> ErrorDetail {
                ErrorDetail::$ty(self)
            }
        }
        impl From<$ty> for ErrorDetail {
            fn from(d: $ty) -> ErrorDetail {
                ErrorDetail::$ty(d)
            }
        }
    };
}

/// `google.rpc.RetryInfo`: when the client may retry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct RetryInfo {
    /// Wait at least this long before retrying.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

impl RetryInfo {
    /// Retry after `delay`.
    pub fn after(delay: Duration) -> RetryInfo {
        RetryInfo {
            retry_delay: Some(delay.into()),
        }
    }
}

/// `google.rpc.DebugInfo`: debugging information from the server.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct DebugInfo {
    /// Stack trace entries where the error occurred.
    #[prost(string, repeated, tag = "1")]
    pub stack_entries: Vec<String>,
    /// More debugging information.
    #[prost(string, tag = "2")]
    pub detail: String,
}

/// `google.rpc.QuotaFailure.Violation`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct QuotaViolation {
    /// What the quota applied to (`clientip:…`, `project:…`).
    #[prost(string, tag = "1")]
    pub subject: String,
    /// How the quota check failed.
    #[prost(string, tag = "2")]
    pub description: String,
}

/// `google.rpc.QuotaFailure`: which quotas were exceeded.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct QuotaFailure {
    /// Every violation.
    #[prost(message, repeated, tag = "1")]
    pub violations: Vec<QuotaViolation>,
}

/// `google.rpc.ErrorInfo`: the cause, as a machine-readable reason within a domain.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ErrorInfo {
    /// The reason, `UPPER_SNAKE_CASE`, unique within `domain`.
    #[prost(string, tag = "1")]
    pub reason: String,
    /// Who defines `reason` (usually the service's name).
    #[prost(string, tag = "2")]
    pub domain: String,
    /// Structured facts about the error.
    #[prost(map = "string, string", tag = "3")]
    pub metadata: HashMap<String, String>,
}

/// `google.rpc.PreconditionFailure.Violation`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct PreconditionViolation {
    /// The kind of precondition (`TOS`, …).
    #[prost(string, tag = "1")]
    pub r#type: String,
    /// What failed, relative to the kind.
    #[prost(string, tag = "2")]
    pub subject: String,
    /// How it failed.
    #[prost(string, tag = "3")]
    pub description: String,
}

/// `google.rpc.PreconditionFailure`: which preconditions failed.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct PreconditionFailure {
    /// Every violation.
    #[prost(message, repeated, tag = "1")]
    pub violations: Vec<PreconditionViolation>,
}

/// `google.rpc.BadRequest.FieldViolation`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct FieldViolation {
    /// The path to the field (`address.zip`).
    #[prost(string, tag = "1")]
    pub field: String,
    /// Why it is bad.
    #[prost(string, tag = "2")]
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`, with why.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> FieldViolation {
        FieldViolation {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// `google.rpc.BadRequest`: which request fields are bad.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct BadRequest {
    /// Every bad field.
    #[prost(message, repeated, tag = "1")]
    pub field_violations: Vec<FieldViolation>,
}

/// `google.rpc.RequestInfo`: which request this was, for bug reports.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct RequestInfo {
    /// An id that the service's logs know.
    #[prost(string, tag = "1")]
    pub request_id: String,
    /// Opaque data the service may want back.
    #[prost(string, tag = "2")]
    pub serving_data: String,
}

/// `google.rpc.ResourceInfo`: the resource the error is about.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct ResourceInfo {
    /// The kind of resource (`file`, or a type URL).
    #[prost(string, tag = "1")]
    pub resource_type: String,
    /// Its name.
    #[prost(string, tag = "2")]
    pub resource_name: String,
    /// Its owner, if any.
    #[prost(string, tag = "3")]
    pub owner: String,
    /// What went wrong with it.
    #[prost(string, tag = "4")]
    pub description: String,
}

/// `google.rpc.Help.Link`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct HelpLink {
    /// What the link offers.
    #[prost(string, tag = "1")]
    pub description: String,
    /// The URL.
    #[prost(string, tag = "2")]
    pub url: String,
}

/// `google.rpc.Help`: links to documentation or to fix the problem.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Help {
    /// The links.
    #[prost(message, repeated, tag = "1")]
    pub links: Vec<HelpLink>,
}

/// `google.rpc.LocalizedMessage`: an error message safe to show users.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct LocalizedMessage {
    /// A BCP 47 locale (`en-US`).
    #[prost(string, tag = "1")]
    pub locale: String,
    /// The message in that locale.
    #[prost(string, tag = "2")]
    pub message: String,
}

detail!(RetryInfo, "google.rpc.RetryInfo");
detail!(DebugInfo, "google.rpc.DebugInfo");
detail!(QuotaFailure, "google.rpc.QuotaFailure");
detail!(ErrorInfo, "google.rpc.ErrorInfo");
detail!(PreconditionFailure, "google.rpc.PreconditionFailure");
detail!(BadRequest, "google.rpc.BadRequest");
detail!(RequestInfo, "google.rpc.RequestInfo");
detail!(ResourceInfo, "google.rpc.ResourceInfo");
detail!(Help, "google.rpc.Help");
detail!(LocalizedMessage, "google.rpc.LocalizedMessage");

/// One detail of a status: a standard message, or any other `Any` kept as it came.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
#[allow(missing_docs)] // Each variant is the message of the same name.
pub enum ErrorDetail {
    RetryInfo(RetryInfo),
    DebugInfo(DebugInfo),
    QuotaFailure(QuotaFailure),
    ErrorInfo(ErrorInfo),
    PreconditionFailure(PreconditionFailure),
    BadRequest(BadRequest),
    RequestInfo(RequestInfo),
    ResourceInfo(ResourceInfo),
    Help(Help),
    LocalizedMessage(LocalizedMessage),
    /// A message of another type, packed.
    Other(Any),
}

impl ErrorDetail {
    /// Packs it as an `Any`.
    pub fn to_any(&self) -> Any {
        match self {
            ErrorDetail::RetryInfo(m) => Any::pack(m),
            ErrorDetail::DebugInfo(m) => Any::pack(m),
            ErrorDetail::QuotaFailure(m) => Any::pack(m),
            ErrorDetail::ErrorInfo(m) => Any::pack(m),
            ErrorDetail::PreconditionFailure(m) => Any::pack(m),
            ErrorDetail::BadRequest(m) => Any::pack(m),
            ErrorDetail::RequestInfo(m) => Any::pack(m),
            ErrorDetail::ResourceInfo(m) => Any::pack(m),
            ErrorDetail::Help(m) => Any::pack(m),
            ErrorDetail::LocalizedMessage(m) => Any::pack(m),
            ErrorDetail::Other(any) => any.clone(),
        }
    }

    /// Unpacks a standard message by its type URL; anything else (or a standard URL whose
    /// bytes do not decode) is kept as [`ErrorDetail::Other`].
    pub fn from_any(any: Any) -> ErrorDetail {
        fn try_as<M: Detail>(any: &Any) -> Option<ErrorDetail> {
            any.unpack::<M>().ok().flatten().map(M::into_detail)
        }
        try_as::<RetryInfo>(&any)
            .or_else(|| try_as::<DebugInfo>(&any))
            .or_else(|| try_as::<QuotaFailure>(&any))
            .or_else(|| try_as::<ErrorInfo>(&any))
            .or_else(|| try_as::<PreconditionFailure>(&any))
            .or_else(|| try_as::<BadRequest>(&any))
            .or_else(|| try_as::<RequestInfo>(&any))
            .or_else(|| try_as::<ResourceInfo>(&any))
            .or_else(|| try_as::<Help>(&any))
            .or_else(|| try_as::<LocalizedMessage>(&any))
            .unwrap_or(ErrorDetail::Other(any))
    }
}

/// The details of a status, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErrorDetails {
    /// Every detail, as sent.
    pub details: Vec<ErrorDetail>,
}

macro_rules! getter {
    ($fn:ident, $ty:ident) => {
        #[doc = concat!("The first `", stringify!($ty), "`, if any.")]
        pub fn $fn(&self) -> Option<&$ty> {
            self.details.iter().find_map(|d| match d {
                ErrorDetail::$ty(m) => Some(m),
                _ => None,
            })
        }
    };
}

impl ErrorDetails {
    /// No details.
    pub fn new() -> ErrorDetails {
        ErrorDetails::default()
    }

    /// Adds a detail (any standard message, or an [`ErrorDetail`]).
    pub fn with(mut self, detail: impl Into<ErrorDetail>) -> ErrorDetails {
        self.details.push(detail.into());
        self
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.details.is_empty()
    }

    getter!(retry_info, RetryInfo);
    getter!(debug_info, DebugInfo);
    getter!(quota_failure, QuotaFailure);
    getter!(error_info, ErrorInfo);
    getter!(precondition_failure, PreconditionFailure);
    getter!(bad_request, BadRequest);
    getter!(request_info, RequestInfo);
    getter!(resource_info, ResourceInfo);
    getter!(help, Help);
    getter!(localized_message, LocalizedMessage);
}

impl FromIterator<ErrorDetail> for ErrorDetails {
    fn from_iter<I: IntoIterator<Item = ErrorDetail>>(iter: I) -> Self {
        ErrorDetails {
            details: iter.into_iter().collect(),
        }
    }
}

impl Status {
    /// A status with `code`, `message` and typed `details`, sent as a `google.rpc.Status` in
    /// `grpc-status-details-bin` (what grpcio-status's `rpc_status.to_status` makes).
    pub fn with_error_details(
        code: Code,
        message: impl Into<String>,
        details: ErrorDetails,
    ) -> Status {
        let message = message.into();
        let rpc = RpcStatus {
            code: code as i32,
            message: message.clone(),
            details: details.details.iter().map(ErrorDetail::to_any).collect(),
        };
        Status::new(code, message).with_details(rpc.encode_to_vec())
    }

    /// The `google.rpc.Status` in the details, if there are details.
    ///
    /// # Errors
    /// The decode error if the details are not a `google.rpc.Status`.
    pub fn rpc_status(&self) -> Result<Option<RpcStatus>, prost::DecodeError> {
        if self.details().is_empty() {
            return Ok(None);
        }
        RpcStatus::decode(&self.details()[..]).map(Some)
    }

    /// The typed details (empty when the status has none), read from the `google.rpc.Status`
    /// in `grpc-status-details-bin`; details of other types come as [`ErrorDetail::Other`].
    ///
    /// # Errors
    /// The decode error if the details are not a `google.rpc.Status`.
    pub fn error_details(&self) -> Result<ErrorDetails, prost::DecodeError> {
        Ok(self
            .rpc_status()?
            .map(|rpc| rpc.details.into_iter().map(ErrorDetail::from_any).collect())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_standard_detail_round_trips_through_the_trailers() {
        let mut info = ErrorInfo {
            reason: "QUOTA".into(),
            domain: "example.com".into(),
            metadata: HashMap::new(),
        };
        info.metadata.insert("limit".into(), "10".into());
        let details = ErrorDetails::new()
            .with(RetryInfo::after(Duration::from_millis(1500)))
            .with(DebugInfo {
                stack_entries: vec!["a".into(), "b".into()],
                detail: "d".into(),
            })
            .with(QuotaFailure {
                violations: vec![QuotaViolation {
                    subject: "s".into(),
                    description: "q".into(),
                }],
            })
            .with(info)
            .with(PreconditionFailure {
                violations: vec![PreconditionViolation {
                    r#type: "TOS".into(),
                    subject: "x".into(),
                    description: "y".into(),
                }],
            })
            .with(BadRequest {
                field_violations: vec![FieldViolation::new("name", "empty")],
            })
            .with(RequestInfo {
                request_id: "r1".into(),
                serving_data: "sd".into(),
            })
            .with(ResourceInfo {
                resource_type: "file".into(),
                resource_name: "/x".into(),
                owner: "me".into(),
                description: "gone".into(),
            })
            .with(Help {
                links: vec![HelpLink {
                    description: "docs".into(),
                    url: "https://example.com".into(),
                }],
            })
            .with(LocalizedMessage {
                locale: "en-US".into(),
                message: "Oops".into(),
            })
            .with(ErrorDetail::Other(Any {
                type_url: "type.googleapis.com/acme.Custom".into(),
                value: vec![8, 1],
            }));
        let status = Status::with_error_details(Code::FailedPrecondition, "no", details.clone());
        let mut trailers = Vec::new();
        status.to_trailers(&mut trailers);
        let back = Status::from_trailers(&trailers).unwrap();
        assert_eq!(back.code(), Code::FailedPrecondition);
        let got = back.error_details().unwrap();
        assert_eq!(got, details);
        assert_eq!(
            got.retry_info().unwrap().retry_delay.unwrap().to_duration(),
            Duration::from_millis(1500)
        );
        let rpc = back.rpc_status().unwrap().unwrap();
        assert_eq!(rpc.code, Code::FailedPrecondition as i32);
        assert_eq!(rpc.message, "no");
        assert_eq!(
            rpc.details[5].type_url,
            "type.googleapis.com/google.rpc.BadRequest"
        );
    }

    #[test]
    fn no_details_and_bad_details() {
        assert!(Status::not_found("x").error_details().unwrap().is_empty());
        let bad = Status::internal("x").with_details(&b"\xff\xff"[..]);
        assert!(bad.error_details().is_err());
        // A standard type URL over bytes that are not that message stays `Other`.
        let any = Any {
            type_url: "type.googleapis.com/google.rpc.Help".into(),
            value: vec![0xff],
        };
        assert!(matches!(ErrorDetail::from_any(any), ErrorDetail::Other(_)));
    }
}
