//! HTTP CONNECT proxies (gRFC A1), chosen and used as grpcio does.
//!
//! Which proxy: the channel's own ([`ChannelBuilder::http_proxy`], grpcio's `grpc.http_proxy`),
//! else the first of the environment variables `grpc_proxy`, `https_proxy`, `http_proxy` that
//! is set; an empty value means no proxy. Hosts listed in the channel's
//! [`no_proxy`](ChannelBuilder::no_proxy), else in `no_grpc_proxy`, else in `no_proxy`, are
//! reached directly. Like grpcio, only the lower-case names are read (grpc-go and curl also
//! read `HTTPS_PROXY` and `NO_PROXY`; pip users often set those for PyPI alone), and a
//! loopback target goes through the proxy unless `no_proxy` names it. Unix-socket targets never
//! use a proxy. [`ChannelBuilder::enable_http_proxy`]`(false)` (`grpc.enable_http_proxy=0`)
//! turns all of it off.
//!
//! The handshake is `CONNECT host:port HTTP/1.1` on a TCP connection to the proxy; a 2xx reply
//! makes the connection a tunnel to the target, and TLS, if any, runs inside it with the
//! target's name. [`parse_reply`] is the protocol (no I/O); [`tunnel`] drives it on a socket.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::client::ChannelBuilder;
use crate::transport::driver::ReadHalf;

/// The environment variables naming the proxy, in the order grpcio reads them.
pub(crate) const PROXY_VARS: [&str; 3] = ["grpc_proxy", "https_proxy", "http_proxy"];

/// The environment variables listing hosts reached without the proxy, in grpcio's order.
pub(crate) const NO_PROXY_VARS: [&str; 2] = ["no_grpc_proxy", "no_proxy"];

/// The proxy port when the URL gives none: 443, as grpcio (whose resolver defaults to it).
const DEFAULT_PROXY_PORT: u16 = 443;

/// The most reply bytes read looking for the end of the proxy's reply headers.
const MAX_REPLY_HEAD: usize = 16 * 1024;

/// The channel's proxy settings as given to its builder; the environment fills the gaps at
/// [`ChannelBuilder::build`].
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct ProxyOptions {
    /// `grpc.enable_http_proxy=0`: never use a proxy.
    pub disabled: bool,
    /// `grpc.http_proxy`: this proxy URL instead of the environment's (empty: none).
    pub url: Option<String>,
    /// This `no_proxy` list instead of the environment's.
    pub no_proxy: Option<String>,
}

impl fmt::Debug for ProxyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyOptions")
            .field("disabled", &self.disabled)
            .field("url", &self.url.as_deref().map(redact))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// `url` with any `user:password@` replaced, for messages and `Debug`.
fn redact(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}***@{}", &url[..start], &url[start + at + 1..]),
        None => url.to_string(),
    }
}

impl ChannelBuilder {
    /// Connects through this HTTP CONNECT proxy (grpcio's `grpc.http_proxy`) instead of the
    /// one the environment names (`grpc_proxy`, `https_proxy`, `http_proxy`); an empty string
    /// means no proxy. Forms: `http://host:port`, `host:port`, with `user:password@` before
    /// the host for Basic proxy authentication (percent-encoded); the port defaults to 443 as
    /// in grpcio. Only `http://` proxies are supported: TLS to the server runs end to end
    /// inside the tunnel. Hosts in [`no_proxy`](Self::no_proxy) (or the environment's
    /// `no_grpc_proxy` / `no_proxy`) are still reached directly.
    ///
    /// ```
    /// let channel = grpc_sync::Channel::builder("api.example.com:443")
    ///     .http_proxy("http://proxy.corp:3128")
    ///     .build()?;
    /// # drop(channel);
    /// # Ok::<(), grpc_sync::Status>(())
    /// ```
    ///
    /// A URL that cannot be used makes [`build`](Self::build) fail with INVALID_ARGUMENT; a
    /// bad one in the environment is logged and ignored, as grpcio does.
    pub fn http_proxy(mut self, url: &str) -> Self {
        self.proxy.url = Some(url.to_string());
        self
    }

    /// Hosts to reach without the proxy, replacing the environment's `no_grpc_proxy` /
    /// `no_proxy`: comma-separated host names (`example.com` and `.example.com` both match the
    /// name and its subdomains), IP addresses, CIDR blocks (`10.0.0.0/8`, `fd00::/8`), each
    /// optionally with `:port`; `*` bypasses the proxy for every host. An empty list makes
    /// every host use the proxy.
    ///
    /// ```
    /// let channel = grpc_sync::Channel::builder("10.1.2.3:50051")
    ///     .http_proxy("proxy.corp:3128")
    ///     .no_proxy("localhost,127.0.0.1,10.0.0.0/8,.internal.example")
    ///     .build()?;
    /// # drop(channel);
    /// # Ok::<(), grpc_sync::Status>(())
    /// ```
    pub fn no_proxy(mut self, list: &str) -> Self {
        self.proxy.no_proxy = Some(list.to_string());
        self
    }

    /// Whether the channel may use an HTTP CONNECT proxy at all (grpcio's
    /// `grpc.enable_http_proxy`; default true). `false` ignores the environment and
    /// [`http_proxy`](Self::http_proxy): the channel connects directly.
    pub fn enable_http_proxy(mut self, enabled: bool) -> Self {
        self.proxy.disabled = !enabled;
        self
    }
}

/// A proxy URL, parsed: where the proxy listens and what credentials to present.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ProxyUrl {
    /// `host:port` of the proxy (`[v6]:port` for an IPv6 address).
    pub host_port: String,
    /// `user:password`, percent-decoded, for `Proxy-Authorization: Basic`.
    pub credentials: Option<Vec<u8>>,
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyUrl")
            .field("host_port", &self.host_port)
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ProxyUrl {
    /// Parses `http://[user:password@]host[:port][/]` or the same without `http://`.
    ///
    /// # Errors
    /// What is wrong, without repeating the credentials.
    pub fn parse(url: &str) -> Result<ProxyUrl, String> {
        let url = url.trim();
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "the {scheme}:// scheme is not supported: only http:// proxies are (TLS to \
                     the server runs inside the tunnel)"
                ))
            }
            None => url,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (credentials, host_port) = match authority.rsplit_once('@') {
            Some((user_info, host)) => (Some(percent_decode(user_info)?), host),
            None => (None, authority),
        };
        let host_port = with_port(host_port)?;
        Ok(ProxyUrl {
            host_port,
            credentials,
        })
    }

    /// The `Proxy-Authorization` header value, if the URL has credentials (RFC 7617).
    fn authorization(&self) -> Option<String> {
        let creds = self.credentials.as_ref()?;
        let mut b64 = crate::metadata::base64_encode(creds);
        while b64.len() % 4 != 0 {
            b64.push('=');
        }
        Some(format!("Basic {b64}"))
    }
}

/// Checks a proxy's `host[:port]` and adds the default port.
fn with_port(host_port: &str) -> Result<String, String> {
    let (host, port) = split_host_port(host_port);
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '@') {
        return Err(format!("no usable proxy host in {host_port:?}"));
    }
    let port = match port {
        None => DEFAULT_PROXY_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("the proxy port {p:?} is not a number from 1 to 65535"))?,
    };
    if host.contains(':') {
        Ok(format!("[{host}]:{port}"))
    } else {
        Ok(format!("{host}:{port}"))
    }
}

/// Splits `host:port`, `[v6]:port`, `[v6]`, a bare IPv6 address or a bare host; the host comes
/// back without brackets.
fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => (rest, None),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        // More than one colon and no brackets: an IPv6 address without a port.
        _ => (s, None),
    }
}

fn percent_decode(s: &str) -> Result<Vec<u8>, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("the proxy URL's user:password has a bad %-escape")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// One `no_proxy` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// `*`: every host.
    All,
    /// An address block, `10.0.0.0/8`: hosts given as addresses inside it.
    Cidr(IpAddr, u8),
    /// An address, optionally with a port.
    Ip(IpAddr, Option<u16>),
    /// A name and its subdomains (lower case, no leading or trailing dot), optionally a port.
    Domain(String, Option<u16>),
}

/// A parsed `no_proxy` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NoProxy {
    entries: Vec<Entry>,
}

impl NoProxy {
    /// Parses a comma-separated list; entries that mean nothing (`10.0.0.0/99`) are skipped.
    pub fn parse(list: &str) -> NoProxy {
        let entries = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .filter_map(parse_entry)
            .collect();
        NoProxy { entries }
    }

    /// Whether `host` (a name or an address, IPv6 with or without brackets) at `port` is
    /// reached without the proxy.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let ip: Option<IpAddr> = host.parse().ok();
        let port_ok = |p: &Option<u16>| !matches!(p, Some(q) if *q != port);
        self.entries.iter().any(|e| match e {
            Entry::All => true,
            Entry::Cidr(net, bits) => ip.is_some_and(|ip| in_block(ip, *net, *bits)),
            Entry::Ip(addr, p) => ip == Some(*addr) && port_ok(p),
            Entry::Domain(d, p) => {
                port_ok(p)
                    && ip.is_none()
                    && (host == *d
                        || (host.len() > d.len()
                            && host.ends_with(d.as_str())
                            && host.as_bytes()[host.len() - d.len() - 1] == b'.'))
            }
        })
    }
}

fn parse_entry(entry: &str) -> Option<Entry> {
    if entry == "*" {
        return Some(Entry::All);
    }
    if let Some((addr, bits)) = entry.split_once('/') {
        let addr: IpAddr = addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        let bits: u8 = bits.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        return (bits <= max).then_some(Entry::Cidr(addr, bits));
    }
    let (host, port) = split_host_port(entry);
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(Entry::Ip(ip, port));
    }
    let name = host
        .trim_start_matches("*.")
        .trim_start_matches('.')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    (!name.is_empty()).then_some(Entry::Domain(name, port))
}

/// Whether `ip` is in the block `net/bits` (same address family only).
fn in_block(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
        let (whole, rest) = (usize::from(bits / 8), bits % 8);
        if a[..whole] != b[..whole] {
            return false;
        }
        rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
    }
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => prefix_eq(&a.octets(), &b.octets(), bits),
        (IpAddr::V6(a), IpAddr::V6(b)) => prefix_eq(&a.octets(), &b.octets(), bits),
        _ => false,
    }
}

/// The proxy a channel uses, and the hosts it reaches without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub proxy: ProxyUrl,
    pub no_proxy: NoProxy,
}

impl Route {
    /// Whether a connection to `host:port` goes through the proxy.
    pub fn applies_to(&self, host: &str, port: u16) -> bool {
        !self.no_proxy.matches(host, port)
    }
}

/// Reads a variable from the process environment (`None` if unset or not Unicode).
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The proxy route for a channel with `options`, reading the environment through `env`
/// (`process_env` for the real one; tests pass a map). `None`: connect directly.
///
/// # Errors
/// A [`ChannelBuilder::http_proxy`] URL that cannot be used (one from the environment is
/// logged and ignored instead, as grpcio does).
pub(crate) fn route(
    options: &ProxyOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Route>, String> {
    if options.disabled {
        return Ok(None);
    }
    let (source, url) = match &options.url {
        Some(url) => ("grpc.http_proxy", url.clone()),
        None => match PROXY_VARS.iter().find_map(|v| env(v).map(|url| (*v, url))) {
            Some(found) => found,
            None => return Ok(None),
        },
    };
    if url.trim().is_empty() {
        return Ok(None);
    }
    let proxy = match ProxyUrl::parse(&url) {
        Ok(p) => p,
        Err(why) if options.url.is_some() => {
            return Err(format!("bad HTTP proxy {:?}: {why}", redact(&url)))
        }
        Err(why) => {
            log::warn!(
                "grpc-sync: ignoring {source}={:?} ({why}): connecting without a proxy",
                redact(&url)
            );
            return Ok(None);
        }
    };
    let no_proxy = match &options.no_proxy {
        Some(list) => list.clone(),
        None => NO_PROXY_VARS
            .iter()
            .find_map(|v| env(v))
            .unwrap_or_default(),
    };
    Ok(Some(Route {
        proxy,
        no_proxy: NoProxy::parse(&no_proxy),
    }))
}

/// The proxy's reply to CONNECT, as far as it has arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The reply's head is not complete yet: read more.
    Partial,
    /// 2xx: the tunnel is open; the bytes after `head_len` are the target's.
    Tunnel { head_len: usize },
    /// Any other status, with the reply's status line (`HTTP/1.1 403 Forbidden`).
    Refused { code: u16, status_line: String },
}

/// Parses the start of a proxy's reply to CONNECT (no I/O: feed it what has arrived so far).
///
/// # Errors
/// The bytes are not an HTTP/1.x response; the message says what they look like.
pub(crate) fn parse_reply(buf: &[u8]) -> Result<Reply, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let status = resp.parse(buf).map_err(|e| {
        if buf.len() >= 2 && buf[0] == 0x16 && buf[1] == 0x03 {
            "it answered with TLS: an https:// proxy? only http:// proxies are supported"
                .to_string()
        } else {
            format!("not an HTTP reply ({e}): {}", printable(buf, 64))
        }
    })?;
    let head_len = match status {
        httparse::Status::Partial => return Ok(Reply::Partial),
        httparse::Status::Complete(n) => n,
    };
    let code = resp.code.unwrap_or(0);
    if (200..300).contains(&code) {
        return Ok(Reply::Tunnel { head_len });
    }
    let line_end = buf
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(buf.len());
    Ok(Reply::Refused {
        code,
        status_line: printable(&buf[..line_end], 200),
    })
}

/// Up to `max` bytes of `bytes` as text, other bytes escaped.
fn printable(bytes: &[u8], max: usize) -> String {
    let shown = &bytes[..bytes.len().min(max)];
    let mut s: String = shown.escape_ascii().to_string();
    if bytes.len() > max {
        s.push('…');
    }
    s
}

/// The CONNECT request for `authority` (`host:port`).
fn connect_request(proxy: &ProxyUrl, authority: &str) -> Vec<u8> {
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = proxy.authorization() {
        req.push_str("Proxy-Authorization: ");
        req.push_str(&auth);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// Time left until `deadline`, or an error naming `what` if none is.
fn left(deadline: Instant, what: impl FnOnce() -> String) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(what())
    } else {
        Ok(left)
    }
}

/// Opens a tunnel through `proxy` to `authority` (`host:port`) by `deadline`: the socket to
/// the proxy, now a pipe to the target, and any bytes of the target's that came with the
/// proxy's reply.
///
/// # Errors
/// A message naming the proxy and the target: the proxy cannot be reached, refused (with its
/// status line), answered with something else than HTTP, or not in time.
pub(crate) fn tunnel(
    proxy: &ProxyUrl,
    authority: &str,
    deadline: Instant,
) -> Result<(TcpStream, Vec<u8>), String> {
    let p = &proxy.host_port;
    let addrs: Vec<_> = p
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve the proxy {p}: {e}"))?
        .collect();
    let mut errors = Vec::new();
    let mut sock = None;
    for a in addrs {
        let t = left(deadline, || {
            format!("connecting to the proxy {p} timed out")
        })?;
        match TcpStream::connect_timeout(&a, t) {
            Ok(s) => {
                sock = Some(s);
                break;
            }
            Err(e) => errors.push(format!("{a}: {e}")),
        }
    }
    let Some(mut sock) = sock else {
        return Err(format!(
            "cannot connect to the proxy {p}: {}",
            errors.join("; ")
        ));
    };
    let _ = sock.set_nodelay(true);
    let timed_out = || format!("the proxy {p} did not answer CONNECT to {authority} in time");
    let io_err = |e: io::Error| {
        if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            timed_out()
        } else {
            format!("the proxy {p} failed during CONNECT to {authority}: {e}")
        }
    };
    sock.set_write_timeout(Some(left(deadline, timed_out)?))
        .map_err(io_err)?;
    sock.write_all(&connect_request(proxy, authority))
        .map_err(io_err)?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        sock.set_read_timeout(Some(left(deadline, timed_out)?))
            .map_err(io_err)?;
        let n = match sock.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        if n == 0 {
            return Err(if buf.is_empty() {
                format!(
                    "the proxy {p} closed the connection without answering CONNECT to {authority}"
                )
            } else {
                format!(
                    "the proxy {p} closed the connection in the middle of its reply to CONNECT \
                     to {authority}: {}",
                    printable(&buf, 200)
                )
            });
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_reply(&buf)
            .map_err(|why| format!("the proxy {p} answered CONNECT to {authority} with {why}"))?
        {
            Reply::Partial if buf.len() > MAX_REPLY_HEAD => {
                return Err(format!(
                    "the proxy {p} sent over {MAX_REPLY_HEAD} bytes of reply headers to CONNECT \
                     to {authority}"
                ))
            }
            Reply::Partial => {}
            Reply::Tunnel { head_len } => {
                let _ = sock.set_read_timeout(None);
                let _ = sock.set_write_timeout(None);
                return Ok((sock, buf.split_off(head_len)));
            }
            Reply::Refused { code, status_line } => {
                // 407 is the standard answer; some proxies (tinyproxy) send 401.
                let hint = match (code, &proxy.credentials) {
                    (401 | 407, None) => {
                        "; it wants credentials: give them in the proxy URL, \
                         http://user:password@host:port"
                    }
                    (401 | 407, Some(_)) => "; it did not accept the credentials of the proxy URL",
                    _ => "",
                };
                return Err(format!(
                    "proxy {p} refused CONNECT to {authority}: {status_line}{hint}"
                ));
            }
        }
    }
}

/// A read half that yields `first` (bytes already read off the socket) before reading on.
pub(crate) struct Prefixed<R> {
    first: Vec<u8>,
    pos: usize,
    inner: R,
}

impl<R> Prefixed<R> {
    pub fn new(first: Vec<u8>, inner: R) -> Self {
        Prefixed {
            first,
            pos: 0,
            inner,
        }
    }
}

impl<R: Read> Read for Prefixed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.first.len() {
            let n = buf.len().min(self.first.len() - self.pos);
            buf[..n].copy_from_slice(&self.first[self.pos..self.pos + n]);
            self.pos += n;
            if self.pos == self.first.len() {
                self.first = Vec::new();
                self.pos = 0;
            }
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

impl<R: ReadHalf> ReadHalf for Prefixed<R> {
    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::TcpListener;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        move |name| map.get(name).map(|v| v.to_string())
    }

    fn proxy_of(options: &ProxyOptions, vars: &[(&str, &str)]) -> Option<String> {
        route(options, &env(vars))
            .unwrap()
            .map(|r| r.proxy.host_port)
    }

    #[test]
    fn proxy_urls_parse_in_every_form() {
        let p = ProxyUrl::parse("http://proxy.corp:3128").unwrap();
        assert_eq!(p.host_port, "proxy.corp:3128");
        assert_eq!(p.credentials, None);
        assert_eq!(
            ProxyUrl::parse("proxy.corp:3128/").unwrap().host_port,
            "proxy.corp:3128"
        );
        assert_eq!(
            ProxyUrl::parse("HTTP://proxy.corp").unwrap().host_port,
            "proxy.corp:443"
        );
        assert_eq!(
            ProxyUrl::parse("http://[::1]:8080").unwrap().host_port,
            "[::1]:8080"
        );
        assert_eq!(ProxyUrl::parse("[::1]").unwrap().host_port, "[::1]:443");
        let p = ProxyUrl::parse("http://us%65r:p%40ss:w@rd@10.0.0.1:80/path").unwrap();
        assert_eq!(p.host_port, "10.0.0.1:80");
        assert_eq!(p.credentials.as_deref(), Some(&b"user:p@ss:w@rd"[..]));
        assert_eq!(
            p.authorization().unwrap(),
            format!(
                "Basic {}",
                "dXNlcjpwQHNzOndAcmQ=" // base64("user:p@ss:w@rd")
            )
        );
        assert_eq!(
            ProxyUrl::parse("u:p@h:1").unwrap().authorization().unwrap(),
            "Basic dTpw"
        );
    }

    #[test]
    fn bad_proxy_urls_say_why_without_the_password() {
        for (url, why) in [
            ("https://proxy:3128", "https:// scheme is not supported"),
            ("socks5://proxy:1080", "socks5:// scheme"),
            ("http://proxy:99999", "not a number from 1 to 65535"),
            ("http://proxy:0", "not a number"),
            ("http://:3128", "no usable proxy host"),
            ("http://u:p%4@proxy:1", "bad %-escape"),
        ] {
            let e = ProxyUrl::parse(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
        let options = ProxyOptions {
            url: Some("http://user:secret@proxy:nope".into()),
            ..Default::default()
        };
        let e = route(&options, &env(&[])).unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        assert!(e.contains("***@proxy:nope"), "{e}");
        assert!(!format!("{options:?}").contains("secret"));
        assert!(!format!("{:?}", ProxyUrl::parse("u:secret@h").unwrap()).contains("secret"));
    }

    #[test]
    fn the_environment_is_read_in_grpcio_order() {
        let none = ProxyOptions::default();
        let all = [
            ("grpc_proxy", "g:1"),
            ("https_proxy", "s:1"),
            ("http_proxy", "h:1"),
        ];
        assert_eq!(proxy_of(&none, &all), Some("g:1".into()));
        assert_eq!(proxy_of(&none, &all[1..]), Some("s:1".into()));
        assert_eq!(proxy_of(&none, &all[2..]), Some("h:1".into()));
        assert_eq!(proxy_of(&none, &[]), None);
        // Set but empty: no proxy, and the search stops there.
        assert_eq!(
            proxy_of(&none, &[("grpc_proxy", ""), ("https_proxy", "s:1")]),
            None
        );
        // Upper-case names are not read (grpcio does not read them either).
        assert_eq!(
            proxy_of(&none, &[("HTTPS_PROXY", "s:1"), ("HTTP_PROXY", "h:1")]),
            None
        );
        // A bad URL in the environment is ignored, as in grpcio.
        assert_eq!(proxy_of(&none, &[("https_proxy", "https://s:1")]), None);
    }

    #[test]
    fn explicit_settings_win_over_the_environment() {
        let vars = [("https_proxy", "s:1"), ("no_proxy", "target.example")];
        let explicit = ProxyOptions {
            url: Some("e:2".into()),
            ..Default::default()
        };
        let r = route(&explicit, &env(&vars)).unwrap().unwrap();
        assert_eq!(r.proxy.host_port, "e:2");
        // The environment's no_proxy still applies to an explicit proxy (grpcio too)...
        assert!(!r.applies_to("target.example", 443));
        // ...unless the channel has its own list.
        let own_list = ProxyOptions {
            no_proxy: Some(String::new()),
            ..explicit.clone()
        };
        let r = route(&own_list, &env(&vars)).unwrap().unwrap();
        assert!(r.applies_to("target.example", 443));
        // An explicit empty URL means no proxy whatever the environment says.
        let empty = ProxyOptions {
            url: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(proxy_of(&empty, &vars), None);
        let disabled = ProxyOptions {
            disabled: true,
            ..explicit
        };
        assert_eq!(proxy_of(&disabled, &vars), None);
        // no_grpc_proxy comes before no_proxy.
        let r = route(
            &ProxyOptions::default(),
            &env(&[
                ("https_proxy", "s:1"),
                ("no_grpc_proxy", "a.example"),
                ("no_proxy", "b.example"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert!(!r.applies_to("a.example", 1));
        assert!(r.applies_to("b.example", 1));
    }

    #[test]
    fn no_proxy_matches_names_suffixes_addresses_blocks_and_ports() {
        let np = NoProxy::parse(
            " example.com, .corp.example ,*.wild.example, 10.0.0.0/8, fd00::/8, 192.168.1.7, \
             [::1], svc.internal:8443, 172.16.0.1:80, [2001:db8::1]:443, 10.0.0.0/99, ,",
        );
        let yes = [
            ("example.com", 443),
            ("EXAMPLE.com.", 443),
            ("api.example.com", 1),
            ("corp.example", 1),
            ("a.b.corp.example", 1),
            ("x.wild.example", 1),
            ("10.200.3.4", 1),
            ("fd12::5", 1),
            ("[fd12::5]", 1),
            ("192.168.1.7", 50051),
            ("::1", 1),
            ("[::1]", 1),
            ("svc.internal", 8443),
            ("172.16.0.1", 80),
            ("2001:db8::1", 443),
        ];
        for (host, port) in yes {
            assert!(np.matches(host, port), "{host}:{port} should bypass");
        }
        let no = [
            ("badexample.com", 443),
            ("example.com.evil", 443),
            ("11.0.0.1", 1),
            ("fe80::1", 1),
            ("192.168.1.8", 1),
            ("127.0.0.1", 1),
            ("localhost", 1),
            ("svc.internal", 443),
            ("172.16.0.1", 81),
            ("2001:db8::1", 80),
        ];
        for (host, port) in no {
            assert!(
                !np.matches(host, port),
                "{host}:{port} should use the proxy"
            );
        }
        assert!(NoProxy::parse("*").matches("anything", 1));
        assert!(NoProxy::parse("a, *").matches("b", 1));
        assert!(!NoProxy::parse("").matches("a", 1));
        assert!(NoProxy::parse("0.0.0.0/0").matches("1.2.3.4", 1));
        assert!(!NoProxy::parse("0.0.0.0/0").matches("::1", 1));
        assert!(NoProxy::parse("10.1.2.3/32").matches("10.1.2.3", 1));
        assert!(!NoProxy::parse("10.1.2.3/32").matches("10.1.2.4", 1));
        assert!(NoProxy::parse("10.1.2.0/23").matches("10.1.3.255", 1));
        assert!(!NoProxy::parse("10.1.2.0/23").matches("10.1.4.0", 1));
    }

    #[test]
    fn replies_parse_fed_whole_or_byte_by_byte() {
        let ok = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: t\r\n\r\nTUNNEL";
        let head_len = ok.len() - "TUNNEL".len();
        for end in 0..ok.len() {
            let want = if end < head_len {
                Reply::Partial
            } else {
                Reply::Tunnel { head_len }
            };
            assert_eq!(parse_reply(&ok[..end]).unwrap(), want, "prefix {end}");
        }
        assert_eq!(
            parse_reply(b"HTTP/1.0 204 No Content\r\n\r\n").unwrap(),
            Reply::Tunnel { head_len: 27 }
        );
        assert_eq!(
            parse_reply(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno!").unwrap(),
            Reply::Refused {
                code: 403,
                status_line: "HTTP/1.1 403 Forbidden".into()
            }
        );
        let e = parse_reply(b"SSH-2.0-OpenSSH_9.2\r\n").unwrap_err();
        assert!(e.starts_with("not an HTTP reply"), "{e}");
        assert!(e.contains("SSH-2.0"), "{e}");
        let e = parse_reply(b"\x16\x03\x01\x00\x10garbage").unwrap_err();
        assert!(e.contains("https:// proxy"), "{e}");
    }

    #[test]
    fn connect_requests_carry_the_target_and_credentials() {
        let p = ProxyUrl::parse("http://user:pass@proxy:1").unwrap();
        assert_eq!(
            connect_request(&p, "api.example.com:443"),
            b"CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\
              Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n"
        );
    }

    /// A one-connection proxy on 127.0.0.1:0 that reads the request head and answers `reply`
    /// in one write.
    fn one_shot_proxy(reply: &'static [u8]) -> (ProxyUrl, std::thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = ProxyUrl::parse(&listener.local_addr().unwrap().to_string()).unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap() == 1 {
                head.push(b[0]);
            }
            s.write_all(reply).unwrap();
            head
        });
        (url, t)
    }

    #[test]
    fn bytes_after_the_reply_belong_to_the_tunnel() {
        let (url, t) = one_shot_proxy(b"HTTP/1.1 200 OK\r\n\r\nHELLO");
        let deadline = Instant::now() + Duration::from_secs(10);
        let (sock, first) = tunnel(&url, "target:1", deadline).unwrap();
        let head = t.join().unwrap();
        assert_eq!(head, b"CONNECT target:1 HTTP/1.1\r\nHost: target:1\r\n\r\n");
        // However TCP split the write, the tunnel reads HELLO first.
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut r = Prefixed::new(first, sock);
        let mut got = [0u8; 5];
        r.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"HELLO");
    }

    #[test]
    fn refusals_name_the_proxy_the_target_and_the_status_line() {
        let (url, _t) = one_shot_proxy(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        let e = tunnel(&url, "target:1", deadline).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "proxy {} refused CONNECT to target:1: HTTP/1.1 407 Proxy Authentication \
                 Required; it wants credentials",
                url.host_port
            )),
            "{e}"
        );
    }

    #[test]
    fn prefixed_reads_the_prefix_then_the_rest() {
        let mut r = Prefixed::new(b"abc".to_vec(), &b"def"[..]);
        let mut two = [0u8; 2];
        assert_eq!(r.read(&mut two).unwrap(), 2);
        assert_eq!(&two, b"ab");
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"cdef");
    }
}
