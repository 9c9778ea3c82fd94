//! The service config (gRPC's `doc/service_config.md`): JSON given with
//! [`ChannelBuilder::service_config`](crate::ChannelBuilder::service_config) or the
//! `grpc.service_config` option, parsed when the channel is built.
//!
//! Acted on: each `methodConfig`'s `timeout`, `waitForReady`, `maxRequestMessageBytes`,
//! `maxResponseMessageBytes`, `retryPolicy` and `hedgingPolicy` (gRFC A6 retries and hedging:
//! see [`ChannelBuilder::service_config`](crate::ChannelBuilder::service_config); hedging
//! applies to unary calls), for the calls its `name` list matches, and the top-level
//! `retryThrottling`. `retryPolicy`, `hedgingPolicy` and `retryThrottling` are validated as A6
//! says (`maxAttempts` at least 2, and above 5 counted as 5; back-offs and the multiplier above
//! zero; a non-empty `retryableStatusCodes`, by name or number; a `hedgingDelay` duration, zero
//! allowed; `nonFatalStatusCodes` optional, by name or number; `maxTokens` 1 to 1000;
//! `tokenRatio` above zero, three decimals); a method config with both policies is refused.
//! `loadBalancingConfig`, `loadBalancingPolicy` and `healthCheckConfig` are kept here and
//! read by the load balancer (`lb.rs`). Other fields are ignored, as gRPC does, so configs
//! written for newer gRPC versions still load.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::call::CallOptions;
use super::retry::{self, HedgingPolicy, RetryPolicy, ThrottleConfig};
use crate::status::Code;

/// A parsed service config.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceConfig {
    methods: Vec<MethodConfig>,
    /// `(service, method, index into methods)`; `method` empty for a whole service, both
    /// empty for the default. A handful of entries: a scan is cheaper than hashing.
    names: Vec<(String, String, usize)>,
    /// The older way to name the load-balancing policy (read by `lb::from_service_config`).
    pub(crate) load_balancing_policy: Option<String>,
    /// The load-balancing policies in order of preference (read by `lb::from_service_config`).
    pub(crate) load_balancing_config: Option<Value>,
    /// `retryThrottling`, validated.
    pub(crate) retry_throttling: Option<ThrottleConfig>,
    /// The channel's retry state (throttle, buffer), once retries are on
    /// ([`with_retries`](Self::with_retries)) and some method has a retry policy.
    pub(crate) retry: Option<Arc<retry::ChannelRetry>>,
    /// Client-side health checking (read by `lb::from_service_config`).
    pub(crate) health_check_config: Option<Value>,
}

/// One `methodConfig` entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct MethodConfig {
    pub(crate) timeout: Option<Duration>,
    pub(crate) wait_for_ready: Option<bool>,
    pub(crate) max_request_bytes: Option<usize>,
    pub(crate) max_response_bytes: Option<usize>,
    /// `retryPolicy`, validated.
    pub(crate) retry_policy: Option<RetryPolicy>,
    /// `hedgingPolicy`, validated (never together with `retry_policy`).
    pub(crate) hedging_policy: Option<HedgingPolicy>,
}

/// The largest `timeout` a proto Duration holds (10 000 years, in seconds).
const MAX_DURATION_SECS: u64 = 315_576_000_000;

impl ServiceConfig {
    /// Parses `json`.
    ///
    /// # Errors
    /// A message naming the bad field, e.g.
    /// `methodConfig[0].timeout: "abc" is not a duration like "1.5s"`.
    pub(crate) fn parse(json: &str) -> Result<ServiceConfig, String> {
        let root: Value = serde_json::from_str(json).map_err(|e| format!("not valid JSON: {e}"))?;
        let root = root
            .as_object()
            .ok_or_else(|| format!("the service config must be a JSON object, not {root}"))?;
        let mut config = ServiceConfig {
            load_balancing_policy: field(root, "", "loadBalancingPolicy", Kind::String)?
                .map(|v| v.as_str().unwrap_or_default().to_string()),
            load_balancing_config: field(root, "", "loadBalancingConfig", Kind::Array)?.cloned(),
            retry_throttling: match field(root, "", "retryThrottling", Kind::Object)? {
                Some(v) => Some(throttling(v)?),
                None => None,
            },
            health_check_config: field(root, "", "healthCheckConfig", Kind::Object)?.cloned(),
            ..ServiceConfig::default()
        };
        let Some(list) = field(root, "", "methodConfig", Kind::Array)? else {
            return Ok(config);
        };
        for (i, entry) in list.as_array().into_iter().flatten().enumerate() {
            let at = format!("methodConfig[{i}]");
            let obj = entry
                .as_object()
                .ok_or_else(|| format!("{at}: {entry} is not an object"))?;
            config.add_names(obj, &at, i)?;
            config.methods.push(MethodConfig {
                timeout: match field(obj, &at, "timeout", Kind::String)? {
                    Some(v) => Some(duration(v.as_str().unwrap_or_default(), &at, "timeout")?),
                    None => None,
                },
                wait_for_ready: field(obj, &at, "waitForReady", Kind::Bool)?
                    .and_then(Value::as_bool),
                max_request_bytes: size(obj, &at, "maxRequestMessageBytes")?,
                max_response_bytes: size(obj, &at, "maxResponseMessageBytes")?,
                retry_policy: match field(obj, &at, "retryPolicy", Kind::Object)? {
                    Some(v) => Some(retry_policy(v, &path(&at, "retryPolicy"))?),
                    None => None,
                },
                hedging_policy: match field(obj, &at, "hedgingPolicy", Kind::Object)? {
                    Some(v) => Some(hedging_policy(v, &path(&at, "hedgingPolicy"))?),
                    None => None,
                },
            });
            let m = config.methods.last().expect("pushed above");
            if m.retry_policy.is_some() && m.hedging_policy.is_some() {
                return Err(format!(
                    "{at}: has both retryPolicy and hedgingPolicy; a method may have only one"
                ));
            }
        }
        Ok(config)
    }

    /// Reads method config `index`'s `name` list into `self.names`, refusing a name another
    /// method config already has (as gRPC does).
    fn add_names(
        &mut self,
        obj: &Map<String, Value>,
        at: &str,
        index: usize,
    ) -> Result<(), String> {
        let Some(names) = field(obj, at, "name", Kind::Array)? else {
            return Ok(());
        };
        for (j, name) in names.as_array().into_iter().flatten().enumerate() {
            let at = format!("{at}.name[{j}]");
            let n = name
                .as_object()
                .ok_or_else(|| format!("{at}: {name} is not an object"))?;
            let text = |key| -> Result<String, String> {
                Ok(field(n, &at, key, Kind::String)?
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string())
            };
            let (service, method) = (text("service")?, text("method")?);
            if service.is_empty() && !method.is_empty() {
                return Err(format!(
                    "{at}: method {method:?} is given without a service"
                ));
            }
            if self
                .names
                .iter()
                .any(|(s, m, _)| *s == service && *m == method)
            {
                let what = match (service.is_empty(), method.is_empty()) {
                    (true, _) => "the default (no service)".to_string(),
                    (false, true) => format!("service {service:?}"),
                    (false, false) => format!("{service}/{method}"),
                };
                return Err(format!(
                    "{at}: {what} is named by more than one method config"
                ));
            }
            self.names.push((service, method, index));
        }
        Ok(())
    }

    /// Turns retries on as `options` say: with them enabled and some method having a retry
    /// or hedging policy, the channel gets its retry state (throttle and buffer).
    pub(crate) fn with_retries(mut self, options: retry::RetryOptions) -> ServiceConfig {
        let any = self
            .methods
            .iter()
            .any(|m| m.retry_policy.is_some() || m.hedging_policy.is_some());
        self.retry = (options.enabled && any)
            .then(|| Arc::new(retry::ChannelRetry::new(options, self.retry_throttling)));
        self
    }

    /// The method config for `path` (`/service/method`): the one naming that method, else
    /// the one naming its service, else the default.
    pub(crate) fn method(&self, path: &str) -> Option<&MethodConfig> {
        let (service, method) = path
            .strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            .unwrap_or(("", ""));
        let find = |s: &str, m: &str| {
            self.names
                .iter()
                .find(|(ns, nm, _)| ns == s && nm == m)
                .map(|&(_, _, i)| &self.methods[i])
        };
        (!service.is_empty())
            .then(|| find(service, method).or_else(|| find(service, "")))
            .flatten()
            .or_else(|| find("", ""))
    }
}

impl MethodConfig {
    /// Applies this config to a call's options: the shorter of the two timeouts, and
    /// `waitForReady` unless the caller chose.
    pub(crate) fn apply(&self, opts: &mut CallOptions) {
        if let Some(t) = self.timeout {
            opts.timeout = Some(opts.timeout.map_or(t, |own| own.min(t)));
        }
        if let Some(w) = self.wait_for_ready {
            if !opts.wait_for_ready_explicit() {
                opts.wait_for_ready = w;
            }
        }
    }
}

/// The JSON types a field may have.
#[derive(Clone, Copy)]
enum Kind {
    String,
    Bool,
    Array,
    Object,
}

impl Kind {
    fn fits(self, v: &Value) -> bool {
        match self {
            Kind::String => v.is_string(),
            Kind::Bool => v.is_boolean(),
            Kind::Array => v.is_array(),
            Kind::Object => v.is_object(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Bool => "true or false",
            Kind::Array => "a list",
            Kind::Object => "an object",
        }
    }
}

/// `obj[key]` if present and not null, checked to be of `kind`.
fn field<'a>(
    obj: &'a Map<String, Value>,
    at: &str,
    key: &str,
    kind: Kind,
) -> Result<Option<&'a Value>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) if kind.fits(v) => Ok(Some(v)),
        Some(v) => Err(format!("{}: {v} is not {}", path(at, key), kind.name())),
    }
}

fn path(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

/// A message size: a non-negative integer that fits a uint32, as a number or a string (proto3
/// JSON writes 64-bit integers as strings, and gRPC accepts both).
fn size(obj: &Map<String, Value>, at: &str, key: &str) -> Result<Option<usize>, String> {
    let Some(v) = obj.get(key).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse::<u64>().ok(),
        _ => None,
    };
    match n.filter(|&n| n <= u64::from(u32::MAX)) {
        Some(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        None => Err(format!(
            "{}: {v} is not a byte count (an integer from 0 to 4294967295)",
            path(at, key)
        )),
    }
}

/// A proto Duration in JSON: seconds with up to nine decimals and an `s` (`"1.5s"`, `"30s"`).
fn duration(text: &str, at: &str, key: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{}: {text:?} is not a duration like \"1.5s\"",
            path(at, key)
        )
    };
    let digits = text.strip_suffix('s').ok_or_else(bad)?;
    let (secs, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if secs.is_empty() || !all_digits(secs) || !all_digits(frac) || frac.len() > 9 {
        return Err(bad());
    }
    if digits.ends_with('.') {
        return Err(bad());
    }
    let secs: u64 = secs.parse().map_err(|_| bad())?;
    if secs > MAX_DURATION_SECS {
        return Err(bad());
    }
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    Ok(Duration::new(secs, nanos))
}

/// A `retryPolicy` at `at`, validated as gRFC A6 asks.
fn retry_policy(v: &Value, at: &str) -> Result<RetryPolicy, String> {
    let obj = v.as_object().map_or_else(Map::new, Clone::clone);
    let need = |key: &str| {
        obj.get(key)
            .filter(|v| !v.is_null())
            .ok_or_else(|| format!("{}: required", path(at, key)))
    };
    let max_attempts = max_attempts(need("maxAttempts")?, at)?;
    let positive_duration = |key: &str| -> Result<Duration, String> {
        let v = need(key)?;
        let text = v
            .as_str()
            .ok_or_else(|| format!("{}: {v} is not a string", path(at, key)))?;
        let d = duration(text, at, key)?;
        if d.is_zero() {
            return Err(format!("{}: must be greater than zero", path(at, key)));
        }
        Ok(d)
    };
    let initial_backoff = positive_duration("initialBackoff")?;
    let max_backoff = positive_duration("maxBackoff")?;
    let m = need("backoffMultiplier")?;
    let backoff_multiplier = m
        .as_f64()
        .ok_or_else(|| format!("{}: {m} is not a number", path(at, "backoffMultiplier")))?;
    if !backoff_multiplier.is_finite() || backoff_multiplier <= 0.0 {
        return Err(format!(
            "{}: must be greater than zero",
            path(at, "backoffMultiplier")
        ));
    }
    let key = "retryableStatusCodes";
    let codes = need(key)?;
    let list = codes
        .as_array()
        .ok_or_else(|| format!("{}: {codes} is not a list", path(at, key)))?;
    if list.is_empty() {
        return Err(format!("{}: must not be empty", path(at, key)));
    }
    let retryable = code_set(list, &path(at, key))?;
    Ok(RetryPolicy {
        max_attempts,
        initial_backoff,
        max_backoff,
        backoff_multiplier,
        retryable,
    })
}

/// A policy's `maxAttempts`: an integer of at least 2; above 5 counts as 5 (A6).
fn max_attempts(v: &Value, at: &str) -> Result<u32, String> {
    let n =
        integer(v).ok_or_else(|| format!("{}: {v} is not an integer", path(at, "maxAttempts")))?;
    if n < 2 {
        return Err(format!("{}: must be at least 2", path(at, "maxAttempts")));
    }
    Ok(u32::try_from(n)
        .unwrap_or(u32::MAX)
        .min(retry::MAX_ATTEMPTS_CAP))
}

/// A list of status codes (names or numbers) at `at`, as a bit set: bit `n` for code `n`.
fn code_set(list: &[Value], at: &str) -> Result<u32, String> {
    let mut set = 0u32;
    for (i, c) in list.iter().enumerate() {
        let code = status_code(c).ok_or_else(|| {
            format!(
                "{at}[{i}]: {c} is not a status code (a name such as \"UNAVAILABLE\", or 0 to 16)"
            )
        })?;
        set |= 1 << code as u32;
    }
    Ok(set)
}

/// A `hedgingPolicy` at `at`, validated as gRFC A6 asks.
fn hedging_policy(v: &Value, at: &str) -> Result<HedgingPolicy, String> {
    let obj = v.as_object().map_or_else(Map::new, Clone::clone);
    let need = |key: &str| {
        obj.get(key)
            .filter(|v| !v.is_null())
            .ok_or_else(|| format!("{}: required", path(at, key)))
    };
    let max_attempts = max_attempts(need("maxAttempts")?, at)?;
    // Required, as grpc-java has it; "0s" starts every attempt at once.
    let d = need("hedgingDelay")?;
    let text = d
        .as_str()
        .ok_or_else(|| format!("{}: {d} is not a string", path(at, "hedgingDelay")))?;
    let delay = duration(text, at, "hedgingDelay")?;
    let non_fatal = match field(&obj, at, "nonFatalStatusCodes", Kind::Array)? {
        Some(list) => code_set(
            list.as_array().map_or(&[][..], Vec::as_slice),
            &path(at, "nonFatalStatusCodes"),
        )?,
        None => 0,
    };
    Ok(HedgingPolicy {
        max_attempts,
        delay,
        non_fatal,
    })
}

/// The top-level `retryThrottling`, validated as gRFC A6 asks.
fn throttling(v: &Value) -> Result<ThrottleConfig, String> {
    let at = "retryThrottling";
    let obj = v.as_object().map_or_else(Map::new, Clone::clone);
    let need = |key: &str| {
        obj.get(key)
            .filter(|v| !v.is_null())
            .ok_or_else(|| format!("{}: required", path(at, key)))
    };
    let t = need("maxTokens")?;
    let max_tokens = integer(t)
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| {
            format!(
                "{}: {t} is not an integer from 1 to 1000",
                path(at, "maxTokens")
            )
        })?;
    let r = need("tokenRatio")?;
    let ratio = r
        .as_f64()
        .or_else(|| r.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| format!("{}: {r} is not a number", path(at, "tokenRatio")))?;
    // Three decimals count (A6); more are rounded away.
    let ratio_milli = (ratio * 1000.0).round();
    if !ratio_milli.is_finite() || ratio_milli < 1.0 {
        return Err(format!(
            "{}: {r} must be greater than zero (with three decimals at most)",
            path(at, "tokenRatio")
        ));
    }
    Ok(ThrottleConfig {
        max_milli: u32::try_from(max_tokens * 1000).unwrap_or(u32::MAX),
        ratio_milli: ratio_milli.min(f64::from(u32::MAX)) as u32,
    })
}

/// A JSON integer, as a number or a string (proto3 JSON writes some integers as strings).
fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A status code by name (any case, e.g. "UNAVAILABLE" or "unavailable") or number (0..=16).
fn status_code(v: &Value) -> Option<Code> {
    match v {
        Value::String(s) => Code::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s)),
        _ => integer(v)
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| Code::ALL.get(n).copied()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        ServiceConfig::parse(json).unwrap_err()
    }

    const FULL: &str = r#"{
        "loadBalancingPolicy": "round_robin",
        "loadBalancingConfig": [{"round_robin": {}}],
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
        "healthCheckConfig": {"serviceName": "x"},
        "methodConfig": [
            {"name": [{}], "timeout": "10s", "waitForReady": true},
            {"name": [{"service": "a.S"}], "timeout": "1.5s",
             "maxRequestMessageBytes": 100, "maxResponseMessageBytes": "2000"},
            {"name": [{"service": "a.S", "method": "M"}, {"service": "b.T", "method": "N"}],
             "timeout": "0.000000001s", "waitForReady": false,
             "retryPolicy": {"maxAttempts": 9, "initialBackoff": "0.1s", "maxBackoff": "1s",
                             "backoffMultiplier": 1.5,
                             "retryableStatusCodes": ["UNAVAILABLE", "aborted", 4]}},
            {"name": [{"service": "c.U"}],
             "hedgingPolicy": {"maxAttempts": 7, "hedgingDelay": "0.5s",
                               "nonFatalStatusCodes": ["UNAVAILABLE", 13]}}
        ]
    }"#;

    #[test]
    fn parses_every_field() {
        let c = ServiceConfig::parse(FULL).unwrap();
        assert_eq!(c.load_balancing_policy.as_deref(), Some("round_robin"));
        assert!(c.load_balancing_config.is_some());
        assert_eq!(
            c.retry_throttling,
            Some(ThrottleConfig {
                max_milli: 10_000,
                ratio_milli: 100
            })
        );
        assert!(c.health_check_config.is_some());
        assert_eq!(c.methods.len(), 4);
        assert_eq!(c.methods[0].timeout, Some(Duration::from_secs(10)));
        assert_eq!(c.methods[0].wait_for_ready, Some(true));
        assert_eq!(c.methods[1].timeout, Some(Duration::from_millis(1500)));
        assert_eq!(c.methods[1].max_request_bytes, Some(100));
        assert_eq!(c.methods[1].max_response_bytes, Some(2000));
        assert_eq!(c.methods[2].timeout, Some(Duration::from_nanos(1)));
        let p = c.methods[2].retry_policy.unwrap();
        assert_eq!(p.max_attempts, 5, "capped at 5");
        assert_eq!(p.initial_backoff, Duration::from_millis(100));
        assert_eq!(p.max_backoff, Duration::from_secs(1));
        assert_eq!(p.backoff_multiplier, 1.5);
        for code in [Code::Unavailable, Code::Aborted, Code::DeadlineExceeded] {
            assert!(p.retries(code), "{code:?}");
        }
        assert!(!p.retries(Code::Internal));
        assert!(c.retry.is_none(), "retry state comes with with_retries");
        let on = c.clone().with_retries(retry::RetryOptions::default());
        assert!(on.retry.is_some());
        let off = c.clone().with_retries(retry::RetryOptions {
            enabled: false,
            ..Default::default()
        });
        assert!(off.retry.is_none());
        assert_eq!(
            c.methods[3].hedging_policy,
            Some(HedgingPolicy {
                max_attempts: 5,
                delay: Duration::from_millis(500),
                non_fatal: (1 << Code::Unavailable as u32) | (1 << Code::Internal as u32),
            })
        );
    }

    #[test]
    fn matches_the_most_specific_name() {
        let c = ServiceConfig::parse(
            r#"{"methodConfig": [
                {"name": [{"service": ""}], "timeout": "1s"},
                {"name": [{"service": "a.S"}], "timeout": "2s"},
                {"name": [{"service": "a.S", "method": "M"}], "timeout": "3s"}
            ]}"#,
        )
        .unwrap();
        let t = |p: &str| c.method(p).and_then(|m| m.timeout).map(|d| d.as_secs());
        assert_eq!(t("/a.S/M"), Some(3));
        assert_eq!(t("/a.S/Other"), Some(2));
        assert_eq!(t("/b.T/M"), Some(1));
        assert_eq!(t("not-a-path"), Some(1));
        let none =
            ServiceConfig::parse(r#"{"methodConfig": [{"name": [{"service": "a.S"}]}]}"#).unwrap();
        assert!(none.method("/b.T/M").is_none());
        assert!(ServiceConfig::parse("{}")
            .unwrap()
            .method("/a.S/M")
            .is_none());
    }

    #[test]
    fn applies_the_shorter_timeout_and_a_default_wait_for_ready() {
        let m = MethodConfig {
            timeout: Some(Duration::from_secs(2)),
            wait_for_ready: Some(true),
            ..MethodConfig::default()
        };
        let mut o = CallOptions::new();
        m.apply(&mut o);
        assert_eq!(o.timeout, Some(Duration::from_secs(2)));
        assert!(o.wait_for_ready);
        let mut o = CallOptions::new()
            .timeout(Duration::from_secs(1))
            .wait_for_ready(false);
        m.apply(&mut o);
        assert_eq!(o.timeout, Some(Duration::from_secs(1)));
        assert!(!o.wait_for_ready, "the caller's choice wins");
        let mut o = CallOptions::new().timeout(Duration::from_secs(5));
        m.apply(&mut o);
        assert_eq!(o.timeout, Some(Duration::from_secs(2)));
    }

    #[test]
    fn durations() {
        let d = |s| duration(s, "m", "timeout");
        assert_eq!(d("0s"), Ok(Duration::ZERO));
        assert_eq!(d("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(d("0.25s"), Ok(Duration::from_millis(250)));
        assert_eq!(d("3.000000007s"), Ok(Duration::new(3, 7)));
        for bad in [
            "abc",
            "1",
            "s",
            ".5s",
            "1.s",
            "-1s",
            "1.0000000001s",
            "1e3s",
            " 1s",
            "1ms",
        ] {
            assert_eq!(
                d(bad).unwrap_err(),
                format!("m.timeout: {bad:?} is not a duration like \"1.5s\""),
            );
        }
        assert!(d("315576000001s").is_err());
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err("{").starts_with("not valid JSON"), "{}", err("{"));
        assert_eq!(
            err("[]"),
            "the service config must be a JSON object, not []"
        );
        assert_eq!(
            err(r#"{"methodConfig": [{"timeout": "abc"}]}"#),
            r#"methodConfig[0].timeout: "abc" is not a duration like "1.5s""#
        );
        assert_eq!(
            err(r#"{"methodConfig": [{}, {"timeout": 5}]}"#),
            "methodConfig[1].timeout: 5 is not a string"
        );
        assert_eq!(
            err(r#"{"methodConfig": {}}"#),
            "methodConfig: {} is not a list"
        );
        assert_eq!(
            err(r#"{"methodConfig": [7]}"#),
            "methodConfig[0]: 7 is not an object"
        );
        assert_eq!(
            err(r#"{"methodConfig": [{"waitForReady": "yes"}]}"#),
            r#"methodConfig[0].waitForReady: "yes" is not true or false"#
        );
        assert_eq!(
            err(r#"{"methodConfig": [{"maxRequestMessageBytes": -1}]}"#),
            "methodConfig[0].maxRequestMessageBytes: -1 is not a byte count (an integer from 0 \
             to 4294967295)"
        );
        assert_eq!(
            err(r#"{"methodConfig": [{"maxResponseMessageBytes": "lots"}]}"#),
            "methodConfig[0].maxResponseMessageBytes: \"lots\" is not a byte count (an integer \
             from 0 to 4294967295)"
        );
        assert_eq!(
            err(r#"{"methodConfig": [{"name": {"service": "a"}}]}"#),
            r#"methodConfig[0].name: {"service":"a"} is not a list"#
        );
        assert_eq!(
            err(r#"{"methodConfig": [{"name": [{"service": 1}]}]}"#),
            "methodConfig[0].name[0].service: 1 is not a string"
        );
        assert_eq!(
            err(r#"{"methodConfig": [{"name": [{"method": "M"}]}]}"#),
            r#"methodConfig[0].name[0]: method "M" is given without a service"#
        );
        assert_eq!(
            err(r#"{"methodConfig": [{"retryPolicy": []}]}"#),
            "methodConfig[0].retryPolicy: [] is not an object"
        );
        assert_eq!(
            err(r#"{"methodConfig": [{"hedgingPolicy": 1}]}"#),
            "methodConfig[0].hedgingPolicy: 1 is not an object"
        );
        assert_eq!(
            err(r#"{"loadBalancingPolicy": 1}"#),
            "loadBalancingPolicy: 1 is not a string"
        );
        assert_eq!(
            err(r#"{"loadBalancingConfig": {}}"#),
            "loadBalancingConfig: {} is not a list"
        );
        assert_eq!(
            err(r#"{"retryThrottling": 1}"#),
            "retryThrottling: 1 is not an object"
        );
        assert_eq!(
            err(r#"{"healthCheckConfig": "x"}"#),
            r#"healthCheckConfig: "x" is not an object"#
        );
    }

    #[test]
    fn retry_policies_are_validated() {
        let policy = |fields: &str| {
            err(&format!(
                r#"{{"methodConfig": [{{"retryPolicy": {{{fields}}}}}]}}"#
            ))
        };
        const OK: &str = r#""maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s",
            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]"#;
        let with = |key: &str, value: &str| {
            let mut v: Value = serde_json::from_str(&format!("{{{OK}}}")).unwrap();
            match value {
                "" => {
                    v.as_object_mut().unwrap().remove(key);
                }
                _ => {
                    v[key] = serde_json::from_str(value).unwrap();
                }
            }
            let text = v.to_string();
            policy(&text[1..text.len() - 1])
        };
        let at = "methodConfig[0].retryPolicy";
        assert_eq!(
            with("maxAttempts", "1"),
            format!("{at}.maxAttempts: must be at least 2")
        );
        assert_eq!(
            with("maxAttempts", ""),
            format!("{at}.maxAttempts: required")
        );
        assert_eq!(
            with("maxAttempts", "2.5"),
            format!("{at}.maxAttempts: 2.5 is not an integer")
        );
        assert_eq!(
            with("initialBackoff", r#""0s""#),
            format!("{at}.initialBackoff: must be greater than zero")
        );
        assert_eq!(
            with("maxBackoff", r#""1""#),
            format!(r#"{at}.maxBackoff: "1" is not a duration like "1.5s""#)
        );
        assert_eq!(with("maxBackoff", ""), format!("{at}.maxBackoff: required"));
        assert_eq!(
            with("backoffMultiplier", "0"),
            format!("{at}.backoffMultiplier: must be greater than zero")
        );
        assert_eq!(
            with("backoffMultiplier", r#""2""#),
            format!(r#"{at}.backoffMultiplier: "2" is not a number"#)
        );
        assert_eq!(
            with("retryableStatusCodes", "[]"),
            format!("{at}.retryableStatusCodes: must not be empty")
        );
        assert_eq!(
            with("retryableStatusCodes", r#"["UNAVAILABLE", "NOPE"]"#),
            format!(
                r#"{at}.retryableStatusCodes[1]: "NOPE" is not a status code (a name such as "UNAVAILABLE", or 0 to 16)"#
            )
        );
        assert_eq!(
            with("retryableStatusCodes", "[17]"),
            format!(
                r#"{at}.retryableStatusCodes[0]: 17 is not a status code (a name such as "UNAVAILABLE", or 0 to 16)"#
            )
        );
        assert!(ServiceConfig::parse(&format!(
            r#"{{"methodConfig": [{{"retryPolicy": {{{OK}}}}}]}}"#
        ))
        .is_ok());
    }

    #[test]
    fn hedging_policies_are_validated() {
        let policy = |fields: &str| {
            ServiceConfig::parse(&format!(
                r#"{{"methodConfig": [{{"hedgingPolicy": {{{fields}}}}}]}}"#
            ))
        };
        let at = "methodConfig[0].hedgingPolicy";
        let ok = policy(r#""maxAttempts": 2, "hedgingDelay": "0s""#).unwrap();
        assert_eq!(
            ok.methods[0].hedging_policy,
            Some(HedgingPolicy {
                max_attempts: 2,
                delay: Duration::ZERO,
                non_fatal: 0
            })
        );
        for (fields, e) in [
            (
                r#""hedgingDelay": "1s""#,
                format!("{at}.maxAttempts: required"),
            ),
            (
                r#""maxAttempts": 1, "hedgingDelay": "1s""#,
                format!("{at}.maxAttempts: must be at least 2"),
            ),
            (
                r#""maxAttempts": "x", "hedgingDelay": "1s""#,
                format!(r#"{at}.maxAttempts: "x" is not an integer"#),
            ),
            (
                r#""maxAttempts": 3"#,
                format!("{at}.hedgingDelay: required"),
            ),
            (
                r#""maxAttempts": 3, "hedgingDelay": "-1s""#,
                format!(r#"{at}.hedgingDelay: "-1s" is not a duration like "1.5s""#),
            ),
            (
                r#""maxAttempts": 3, "hedgingDelay": 1"#,
                format!("{at}.hedgingDelay: 1 is not a string"),
            ),
            (
                r#""maxAttempts": 3, "hedgingDelay": "1s", "nonFatalStatusCodes": "UNAVAILABLE""#,
                format!(r#"{at}.nonFatalStatusCodes: "UNAVAILABLE" is not a list"#),
            ),
            (
                r#""maxAttempts": 3, "hedgingDelay": "1s", "nonFatalStatusCodes": [14, "NOPE"]"#,
                format!(
                    r#"{at}.nonFatalStatusCodes[1]: "NOPE" is not a status code (a name such as "UNAVAILABLE", or 0 to 16)"#
                ),
            ),
        ] {
            assert_eq!(policy(fields).unwrap_err(), e, "{fields}");
        }
        assert_eq!(
            err(
                r#"{"methodConfig": [{}, {"hedgingPolicy": {"maxAttempts": 2, "hedgingDelay": "1s"},
                "retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s",
                "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#
            ),
            "methodConfig[1]: has both retryPolicy and hedgingPolicy; a method may have only one"
        );
    }

    #[test]
    fn retry_throttling_is_validated() {
        let t = |json: &str| ServiceConfig::parse(&format!(r#"{{"retryThrottling": {json}}}"#));
        assert_eq!(
            t(r#"{"maxTokens": 1000, "tokenRatio": 0.0125}"#)
                .unwrap()
                .retry_throttling,
            Some(ThrottleConfig {
                max_milli: 1_000_000,
                ratio_milli: 13
            })
        );
        for (json, e) in [
            (
                r#"{"maxTokens": 0, "tokenRatio": 1}"#,
                "retryThrottling.maxTokens: 0 is not an integer from 1 to 1000",
            ),
            (
                r#"{"maxTokens": 1001, "tokenRatio": 1}"#,
                "retryThrottling.maxTokens: 1001 is not an integer from 1 to 1000",
            ),
            (
                r#"{"tokenRatio": 1}"#,
                "retryThrottling.maxTokens: required",
            ),
            (
                r#"{"maxTokens": 5}"#,
                "retryThrottling.tokenRatio: required",
            ),
            (
                r#"{"maxTokens": 5, "tokenRatio": 0}"#,
                "retryThrottling.tokenRatio: 0 must be greater than zero (with three decimals \
                 at most)",
            ),
            (
                r#"{"maxTokens": 5, "tokenRatio": 0.0001}"#,
                "retryThrottling.tokenRatio: 0.0001 must be greater than zero (with three \
                 decimals at most)",
            ),
            (
                r#"{"maxTokens": 5, "tokenRatio": []}"#,
                "retryThrottling.tokenRatio: [] is not a number",
            ),
        ] {
            assert_eq!(t(json).unwrap_err(), e, "{json}");
        }
    }

    #[test]
    fn duplicate_names_are_refused() {
        assert_eq!(
            err(
                r#"{"methodConfig": [{"name": [{"service": "a.S", "method": "M"}]},
                                      {"name": [{"service": "a.S", "method": "M"}]}]}"#
            ),
            "methodConfig[1].name[0]: a.S/M is named by more than one method config"
        );
        assert_eq!(
            err(r#"{"methodConfig": [{"name": [{"service": "a.S"}, {"service": "a.S"}]}]}"#),
            r#"methodConfig[0].name[1]: service "a.S" is named by more than one method config"#
        );
        assert_eq!(
            err(r#"{"methodConfig": [{"name": [{}]}, {"name": [{"service": ""}]}]}"#),
            "methodConfig[1].name[0]: the default (no service) is named by more than one \
             method config"
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let c = ServiceConfig::parse(r#"{"future": 1, "methodConfig": [{"other": []}]}"#).unwrap();
        assert_eq!(c.methods.len(), 1);
    }
}
