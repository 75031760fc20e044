//! TLS with rustls, with and without client certificates, against
//! certificates made at test time: a plaintext client cannot talk to a TLS
//! server, a client that trusts the CA can, and with mutual TLS only a
//! client with a certificate from the client CA gets an answer.

use std::{path::Path, time::Duration};

use nasperf::{
    proto::v1::predictor_client::PredictorClient,
    startup::{Application, ServeConfig, TlsFiles},
    train::write_model,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::helpers::{BEST_CELL, candidate, fixture_models, request};

struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
    stranger: (String, String),
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca")
}

fn leaf(issuer: &CertifiedIssuer<'static, KeyPair>, names: &[&str]) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
        .expect("params");
    let cert = params.signed_by(&key, issuer).expect("signed");
    (cert.pem(), key.serialize_pem())
}

fn pki() -> Pki {
    let ca = new_ca("nasperf test CA");
    let other = new_ca("somebody else's CA");
    Pki {
        ca_pem: ca.pem(),
        server: leaf(&ca, &["localhost", "127.0.0.1"]),
        client: leaf(&ca, &["worker-1"]),
        stranger: leaf(&other, &["intruder"]),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write pem");
    path
}

async fn start(
    dir: &Path,
    pki: &Pki,
    mutual: bool,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let models = dir.join("models");
    std::fs::create_dir_all(&models).expect("dir");
    let trained = tokio::task::spawn_blocking(fixture_models)
        .await
        .expect("fixture");
    for m in trained {
        write_model(&models, m).expect("model");
    }
    let mut config = ServeConfig::new("127.0.0.1:0".parse().expect("addr"), &models);
    config.data_dir = dir.join("data");
    config.tls = Some(TlsFiles {
        cert: write(dir, "server.pem", &pki.server.0),
        key: write(dir, "server.key", &pki.server.1),
        client_ca: mutual.then(|| write(dir, "ca.pem", &pki.ca_pem)),
    });
    let app = Application::build(config).await.expect("build");
    let addr = app.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    (addr, tx)
}

async fn tls_channel(
    addr: std::net::SocketAddr,
    ca: &str,
    identity: Option<&(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

/// Predicts until the models are loaded; the error of the last attempt
/// otherwise.
async fn predict_ok(channel: Channel) -> Result<(), tonic::Status> {
    let mut client = PredictorClient::new(channel);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match client
            .predict(request(vec![candidate(BEST_CELL)], &[]))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e)
                if e.code() == tonic::Code::FailedPrecondition
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[tokio::test]
async fn tls_serves_clients_that_trust_its_ca_and_refuses_plaintext() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = pki();
    let (addr, stop) = start(dir.path(), &pki, false).await;

    let channel = tls_channel(addr, &pki.ca_pem, None)
        .await
        .expect("TLS connect");
    predict_ok(channel).await.expect("a prediction over TLS");

    // Plaintext HTTP/2 to a TLS port: no answer.
    let plain = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await;
    if let Ok(plain) = plain {
        assert!(
            predict_ok(plain).await.is_err(),
            "plaintext must not be served"
        );
    }
    // A client that trusts another CA refuses the server.
    let other = new_ca("unrelated").pem();
    let refused = match tls_channel(addr, &other, None).await {
        Err(_) => true,
        Ok(ch) => predict_ok(ch).await.is_err(),
    };
    assert!(
        refused,
        "the server's certificate is not trusted by this client"
    );
    let _ = stop.send(());
}

#[tokio::test]
async fn mutual_tls_answers_only_clients_with_a_certificate_from_the_client_ca() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = pki();
    let (addr, stop) = start(dir.path(), &pki, true).await;

    let with_cert = tls_channel(addr, &pki.ca_pem, Some(&pki.client))
        .await
        .expect("mTLS connect");
    predict_ok(with_cert)
        .await
        .expect("a prediction with a client certificate");

    for identity in [None, Some(&pki.stranger)] {
        let outcome = match tls_channel(addr, &pki.ca_pem, identity).await {
            Err(_) => Err(()),
            Ok(ch) => predict_ok(ch).await.map_err(|_| ()),
        };
        assert!(
            outcome.is_err(),
            "refused without a certificate from the client CA"
        );
    }
    let _ = stop.send(());
}

#[tokio::test]
async fn unreadable_or_invalid_tls_files_stop_the_start_naming_the_file() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = ServeConfig::new("127.0.0.1:0".parse().expect("addr"), dir.path());
    config.data_dir = dir.path().join("data");
    config.tls = Some(TlsFiles {
        cert: dir.path().join("missing.pem"),
        key: dir.path().join("missing.key"),
        client_ca: None,
    });
    let e = Application::build(config.clone())
        .await
        .err()
        .expect("missing files");
    assert!(format!("{e:#}").contains("missing.pem"), "{e:#}");

    let garbage = write(dir.path(), "garbage.pem", "not a certificate");
    config.tls = Some(TlsFiles {
        cert: garbage.clone(),
        key: garbage,
        client_ca: None,
    });
    // Read at build, rejected when the server starts.
    let app = Application::build(config)
        .await
        .expect("files are readable");
    let e = app
        .run_until_stopped(std::future::pending())
        .await
        .expect_err("invalid PEM");
    assert!(format!("{e:#}").contains("TLS"), "{e:#}");
}
