//! Point 3: a reply too large for a frame fails only its own call; the
//! worker keeps its connection. At level `none`, where the attacker shares
//! its worker with every tenant.

use std::sync::Arc;

use bulkhead::ErrorKind;
use bulkhead::isolation::IsolationLevel;
use bulkhead::sandbox::MAX_ERROR_MESSAGE;

use super::Neighbour;
use crate::isolation::{Host, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_error_or_output_fails_its_own_call_and_the_shared_worker_carries_on() {
    let host = Arc::new(
        Host::start(Options {
            level: IsolationLevel::None,
            policy: bulkhead::isolation::TenantPolicy {
                call: bulkhead::sandbox::CallLimits {
                    memory: 128 << 20,
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Options::default()
        })
        .await,
    );
    let neighbour = Neighbour::start(&host, "neighbour").await;
    let pid = host.pid_of("shared");
    for round in 0..3 {
        let err = host
            .call("attacker", None, "hostile", &format!("error {}", 17 << 20))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::GuestError, "round {round}: {err}");
        assert!(err.to_string().len() < MAX_ERROR_MESSAGE + 100);
        let err = host
            .call("attacker", None, "hostile", &format!("output {}", 17 << 20))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::GuestError, "round {round}: {err}");
        assert!(err.to_string().contains("over the limit"), "{err}");
    }
    let report = neighbour.stop().await;
    report.assert_untouched();
    assert_eq!(host.pid_of("shared"), pid, "the shared worker kept its connection");
    let status = host.service.process("shared").unwrap().status;
    assert_eq!((status.restart_count, status.error_count), (0, 0));
    Arc::into_inner(host).unwrap().stop().await;
}
