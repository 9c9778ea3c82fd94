//! Test certificates, made at test time with `rcgen`: a CA, a server certificate for
//! `localhost` and `127.0.0.1`, a client certificate, and the bad ones the failure tests need
//! (expired, wrong name, signed by another CA).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A PEM certificate (chain) and its PEM private key.
#[derive(Clone)]
pub struct Identity {
    pub cert: String,
    pub key: String,
}

/// Everything a TLS test needs, in PEM.
pub struct Pki {
    /// The CA every good certificate chains to.
    pub ca: String,
    /// Another CA, trusted by nobody.
    pub other_ca: String,
    /// Server: `localhost`, `127.0.0.1`.
    pub server: Identity,
    /// Client: CN `grpc-sync test client`, SANs `client.test` and a SPIFFE-like URI.
    pub client: Identity,
    /// A server certificate valid only for `wrong.example`.
    pub wrong_name: Identity,
    /// A server certificate for `localhost` that expired in 2001.
    pub expired: Identity,
    /// A client certificate that expired in 2001.
    pub expired_client: Identity,
    /// A server certificate for `localhost` signed by `other_ca`.
    pub untrusted_server: Identity,
    /// A client certificate signed by `other_ca`.
    pub untrusted_client: Identity,
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("CA key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(&key).expect("CA certificate");
    (cert.pem(), Issuer::new(p, key))
}

fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    cn: &str,
    sans: &[&str],
    client: bool,
    expired: bool,
) -> Identity {
    let key = KeyPair::generate().expect("leaf key");
    let mut p = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("leaf params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "grpc-sync tests");
    p.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    if client {
        p.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://grpc-sync.test/client".try_into().unwrap(),
        ));
    }
    if expired {
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let cert = p.signed_by(&key, issuer).expect("leaf certificate");
    Identity {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

impl Pki {
    /// Makes a fresh set (a few milliseconds).
    pub fn new() -> Pki {
        let (other_ca_pem, other) = ca("untrusted CA");
        let (ca_pem, ca) = ca("grpc-sync test CA");
        let localhost = ["localhost", "127.0.0.1"];
        Pki {
            ca: ca_pem,
            other_ca: other_ca_pem,
            server: leaf(&ca, "localhost", &localhost, false, false),
            client: leaf(&ca, "grpc-sync test client", &["client.test"], true, false),
            wrong_name: leaf(&ca, "wrong.example", &["wrong.example"], false, false),
            expired: leaf(&ca, "localhost", &localhost, false, true),
            expired_client: leaf(&ca, "expired client", &["client.test"], true, true),
            untrusted_server: leaf(&other, "localhost", &localhost, false, false),
            untrusted_client: leaf(&other, "untrusted client", &["client.test"], true, false),
        }
    }

    /// Writes `ca.pem`, `server.pem`/`server.key`, `client.pem`/`client.key` and
    /// `other_ca.pem` into a fresh folder under the target directory, removed when the
    /// returned guard is dropped.
    pub fn write(&self, name: &str) -> CertDir {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("tls-test-certs")
            .join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cert folder");
        for (file, text) in [
            ("ca.pem", &self.ca),
            ("other_ca.pem", &self.other_ca),
            ("server.pem", &self.server.cert),
            ("server.key", &self.server.key),
            ("client.pem", &self.client.cert),
            ("client.key", &self.client.key),
        ] {
            std::fs::write(dir.join(file), text).expect("write cert");
        }
        CertDir(dir)
    }
}

/// A folder of PEM files, removed on drop.
pub struct CertDir(PathBuf);

impl CertDir {
    /// The path of `file` in the folder, as a string argument.
    pub fn arg(&self, file: &str) -> String {
        self.0.join(file).to_string_lossy().into_owned()
    }
}

impl Drop for CertDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
