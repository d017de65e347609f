//! Point 6: a guest flooding and forging log lines is bounded per call and
//! per worker, its calls answer normally, and a neighbour calling at the
//! same time sees nothing of it (what reaches the host's log is checked
//! against the real binary in `service::logs`).

use std::sync::Arc;

use super::Neighbour;
use crate::isolation::{Host, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_is_bounded_and_the_neighbour_notices_nothing() {
    let host = Arc::new(Host::start(Options::default()).await);
    let neighbour = Neighbour::start(&host, "neighbour").await;
    for _ in 0..20 {
        assert_eq!(host.ok("attacker", None, "hostile", "log 20000").await, "logged");
        assert_eq!(host.ok("attacker", None, "hostile", "log-forge").await, "forged");
    }
    neighbour.stop().await.assert_untouched();
    Arc::into_inner(host).unwrap().stop().await;
}
