//! Channel targets: `host:port`, `dns:///host:port`, `ipv4:`/`ipv6:` literals, `unix:/path`.

use std::fmt;
use std::net::SocketAddr;

/// A parsed channel target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A name to resolve (every address it resolves to is tried in turn): `host:port`.
    Dns {
        /// `host:port` as given (also the `:authority`).
        host_port: String,
    },
    /// Literal addresses (`ipv4:1.2.3.4:80,5.6.7.8:80`, `ipv6:[::1]:80`).
    Addrs(Vec<SocketAddr>),
    /// A Unix domain socket path.
    Unix(String),
}

/// A target string that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError {
    target: String,
    why: &'static str,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid target {:?}: {}", self.target, self.why)
    }
}

impl std::error::Error for TargetError {}

fn err(target: &str, why: &'static str) -> TargetError {
    TargetError {
        target: target.to_string(),
        why,
    }
}

/// Splits `host:port` (host may be `[v6]`) and checks the port; the default port is 443 as in
/// gRPC's DNS resolver.
fn check_host_port(s: &str, whole: &str) -> Result<String, TargetError> {
    if s.is_empty() {
        return Err(err(whole, "no host"));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| err(whole, "unclosed '[' in IPv6 address"))?;
        let after = &rest[end + 1..];
        (&s[..end + 2], after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => {
                return Err(err(
                    whole,
                    "IPv6 addresses must be in brackets: [::1]:50051",
                ))
            }
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(err(whole, "no host"));
    }
    match port {
        None => Ok(format!("{host}:443")),
        Some(p) => {
            p.parse::<u16>()
                .map_err(|_| err(whole, "the port is not a number from 0 to 65535"))?;
            Ok(format!("{host}:{p}"))
        }
    }
}

impl Target {
    /// Parses a target the way gRPC does.
    ///
    /// ```
    /// use grpc_sync::client::Target;
    /// assert!(matches!(Target::parse("localhost:50051"), Ok(Target::Dns { .. })));
    /// assert!(matches!(Target::parse("dns:///example.com:443"), Ok(Target::Dns { .. })));
    /// assert!(matches!(Target::parse("ipv4:127.0.0.1:50051"), Ok(Target::Addrs(_))));
    /// assert!(matches!(Target::parse("unix:/tmp/grpc.sock"), Ok(Target::Unix(_))));
    /// assert!(Target::parse("localhost:notaport").is_err());
    /// ```
    ///
    /// # Errors
    /// A [`TargetError`] saying what is wrong with it.
    pub fn parse(target: &str) -> Result<Target, TargetError> {
        let t = target.trim();
        if let Some(rest) = t.strip_prefix("unix:") {
            // unix:path, unix:/abs/path, unix:///abs/path
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(err(target, "empty unix socket path"));
            }
            return Ok(Target::Unix(path.to_string()));
        }
        if let Some(rest) = t.strip_prefix("ipv4:").or_else(|| t.strip_prefix("ipv6:")) {
            let mut addrs = Vec::new();
            for a in rest.split(',') {
                let a: SocketAddr = a
                    .trim()
                    .parse()
                    .map_err(|_| err(target, "not an IP address with a port"))?;
                addrs.push(a);
            }
            return Ok(Target::Addrs(addrs));
        }
        let rest = if let Some(r) = t.strip_prefix("dns:") {
            // dns:///host:port or dns://authority/host:port (the DNS server is ignored).
            match r.strip_prefix("//") {
                Some(r) => r.split_once('/').map(|(_, hp)| hp).unwrap_or(r),
                None => r,
            }
        } else {
            t
        };
        Ok(Target::Dns {
            host_port: check_host_port(rest, target)?,
        })
    }

    /// The `:authority` for requests on this target.
    pub fn authority(&self) -> String {
        match self {
            Target::Dns { host_port } => host_port.clone(),
            Target::Addrs(a) => a.first().map(|a| a.to_string()).unwrap_or_default(),
            Target::Unix(_) => "localhost".to_string(),
        }
    }

    /// The host to verify a TLS server as: the name without its port, or the first address.
    pub(crate) fn host(&self) -> String {
        match self {
            Target::Dns { host_port } => match host_port.rsplit_once(':') {
                Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']').to_string(),
                None => host_port.clone(),
            },
            Target::Addrs(a) => a.first().map(|a| a.ip().to_string()).unwrap_or_default(),
            Target::Unix(_) => "localhost".to_string(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Dns { host_port } => write!(f, "dns:///{host_port}"),
            Target::Addrs(a) => {
                let parts: Vec<String> = a
                    .iter()
                    .map(|a| match a {
                        SocketAddr::V4(a) => format!("ipv4:{a}"),
                        SocketAddr::V6(a) => format!("ipv6:{a}"),
                    })
                    .collect();
                f.write_str(&parts.join(","))
            }
            Target::Unix(p) => write!(f, "unix:{p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms_parse() {
        assert_eq!(
            Target::parse("localhost:50051").unwrap(),
            Target::Dns {
                host_port: "localhost:50051".into()
            }
        );
        assert_eq!(
            Target::parse("dns:///example.com").unwrap().authority(),
            "example.com:443"
        );
        assert_eq!(
            Target::parse("dns://8.8.8.8/example.com:80")
                .unwrap()
                .authority(),
            "example.com:80"
        );
        assert_eq!(
            Target::parse("[::1]:50051").unwrap().authority(),
            "[::1]:50051"
        );
    }

    #[test]
    fn literal_and_unix_targets_parse() {
        match Target::parse("ipv4:127.0.0.1:1,127.0.0.2:2").unwrap() {
            Target::Addrs(a) => assert_eq!(a.len(), 2),
            t => panic!("{t:?}"),
        }
        assert_eq!(
            Target::parse("ipv6:[::1]:8080").unwrap().authority(),
            "[::1]:8080"
        );
        assert_eq!(
            Target::parse("unix:///tmp/x.sock").unwrap(),
            Target::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            Target::parse("unix:rel.sock").unwrap(),
            Target::Unix("rel.sock".into())
        );
    }

    #[test]
    fn bad_targets_say_why() {
        for t in ["", "host:99999", "::1:80", "ipv4:nope", "unix:", "[::1:80"] {
            let e = Target::parse(t).unwrap_err();
            assert!(!e.to_string().is_empty(), "{t}");
        }
    }
}
