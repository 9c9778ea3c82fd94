//! The gRPC interop test client: runs the named test cases of gRPC's interop descriptions
//! against any implementation's interop server. Prints one line per case and exits 0 only if
//! every case passed.
//!
//! Run: `cargo run --release --example interop_client -- --server_port=10000 --test_case=all`

mod common;

use grpc_sync::Channel;

use common::interop::ClientArgs;

fn main() {
    common::init_logging();
    let program = std::env::args()
        .next()
        .unwrap_or_else(|| "interop_client".into());
    let usage = format!(
        "usage: {program} [--server_host=localhost] [--server_port=10000] \
         [--server_host_override=NAME] [--use_tls=false] [--use_test_ca=false] [--ca_file=F] \
         [--test_case=NAME|all] [--compression_probe=true] [--option=NAME=VALUE]...\ncases: {}",
        common::interop::CASES.join(", ")
    );
    let args = match ClientArgs::parse_from(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{usage}");
            return;
        }
        Err(e) => {
            eprintln!("error: {e}\n{usage}");
            std::process::exit(2);
        }
    };
    let mut builder = Channel::builder(&args.target());
    match args.credentials() {
        Ok(Some(creds)) => builder = builder.tls(creds),
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
    if let Some(name) = &args.server_host_override {
        builder = builder.authority(&format!("{name}:{}", args.server_port));
    }
    builder = match builder.options(args.options.clone()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let channel = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "error: bad server address {}: {}",
                args.target(),
                e.message()
            );
            std::process::exit(2);
        }
    };
    let opts = common::interop::CaseOptions {
        compression_probe: args.compression_probe,
    };
    let ok = common::interop::run_cases(&channel, &args.cases(), opts);
    std::process::exit(if ok { 0 } else { 1 });
}
