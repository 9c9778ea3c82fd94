//! A tiny static file server for the route_guide gRPC-Web page (examples/web/, built into
//! `target/web-test/dist` by `scripts/web-build.sh`): the page has an origin of its own, as a
//! real site would, and calls the gRPC server across origins (CORS).
//!
//! Blocking std sockets on one thread, HTTP/1.0, GET of the files directly in one folder: for
//! the example and the browser test on loopback, not for serving anything else.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The page's folder as `scripts/web-build.sh` leaves it, from the repository root.
pub fn default_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("web-test").join("dist")
}

/// Serves the files of `dir` on `addr` (`127.0.0.1:0` picks a port) from a background
/// thread; returns the bound port.
///
/// # Errors
/// The bind error, or `dir` has no `index.html` (the page is not built).
pub fn serve(dir: PathBuf, addr: &str) -> Result<u16, String> {
    if !dir.join("index.html").is_file() {
        return Err(format!(
            "the page is not built: {} has no index.html (run scripts/web-build.sh)",
            dir.display()
        ));
    }
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    std::thread::Builder::new()
        .name("web-page".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = answer(conn, &dir);
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(port)
}

fn answer(mut conn: TcpStream, dir: &Path) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let path = target.split('?').next().unwrap_or("/");
    let name = if path == "/" {
        "index.html"
    } else {
        &path[1..]
    };
    // Only plain file names of this folder.
    let safe = method == "GET"
        && !name.is_empty()
        && !name.contains(['/', '\\'])
        && !name.starts_with('.');
    let file = if safe {
        std::fs::read(dir.join(name)).ok()
    } else {
        None
    };
    let (status, body, ctype) = match file {
        Some(body) => {
            let ctype = match name.rsplit('.').next() {
                Some("html") => "text/html; charset=utf-8",
                Some("js") => "text/javascript; charset=utf-8",
                _ => "application/octet-stream",
            };
            ("200 OK", body, ctype)
        }
        None => ("404 Not Found", b"not found\n".to_vec(), "text/plain"),
    };
    let head = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(&body)
}
