//! Binding an address already bound is an error, not a panic.

use std::net::SocketAddr;

use livepay_mock::serve::{ServeConfig, ServedModel};

#[tokio::test]
async fn a_port_in_use_is_an_error() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = taken.local_addr().unwrap();
    let orchestrator = ServedModel::start(ServeConfig {
        orchestrator_addr: addr,
        ..ServeConfig::default()
    })
    .await;
    assert!(orchestrator.is_err());
    let signer = ServedModel::start(ServeConfig {
        signer_addr: addr,
        ..ServeConfig::default()
    })
    .await;
    assert_eq!(
        signer.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::AddrInUse)
    );

    // Both listeners on one fixed port: the second bind fails.
    let served = ServedModel::start(ServeConfig::default()).await.unwrap();
    let port_of = |url: String| url.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let busy: SocketAddr = ([127, 0, 0, 1], port_of(served.orchestrator_url())).into();
    let both = ServedModel::start(ServeConfig {
        orchestrator_addr: "127.0.0.1:0".parse().unwrap(),
        signer_addr: busy,
        ..ServeConfig::default()
    })
    .await;
    assert!(both.is_err());
    served.shutdown().await;
}
