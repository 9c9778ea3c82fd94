//! An access log as a server interceptor (`access_log`): one line per RPC through the `log`
//! facade, written when the call ends, whatever its kind and however it ends.

use std::time::Duration;

use grpc_sync::server::{CallEnd, ServerInterceptor};

/// Logs every RPC at `info` level, target `access`: method, peer, final status, duration
/// and messages received and sent (see [`line`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct AccessLog;

impl ServerInterceptor for AccessLog {
    fn on_end(&self, end: &CallEnd<'_>) {
        log::info!(target: "access", "{}", line(end));
    }
}

/// One access-log line, e.g.
/// `/routeguide.RouteGuide/ListFeatures ipv4:127.0.0.1:51234 OK 1.234ms in=1 out=64`; a
/// status other than OK carries its message in quotes.
pub fn line(end: &CallEnd<'_>) -> String {
    let status = end.status();
    let mut text = format!("{} {} {}", end.method(), end.peer(), status.code().as_str());
    if !status.message().is_empty() && status.code() != grpc_sync::Code::Ok {
        text.push_str(&format!(" {:?}", status.message()));
    }
    text.push_str(&format!(
        " {} in={} out={}",
        millis(end.duration()),
        end.messages_received(),
        end.messages_sent()
    ));
    text
}

fn millis(d: Duration) -> String {
    format!("{:.3}ms", d.as_secs_f64() * 1e3)
}

/// A minimal `log` backend for the examples: `LEVEL target: message` on stderr, for records
/// at `level` or above. Does nothing if a logger is already installed.
pub fn init_stderr_logger(level: log::LevelFilter) {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.level() <= log::max_level()
        }
        fn log(&self, record: &log::Record<'_>) {
            if self.enabled(record.metadata()) {
                eprintln!("{} {}: {}", record.level(), record.target(), record.args());
            }
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}
