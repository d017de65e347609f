//! A guest's logs reach the host's log bounded and sanitised: a forged line
//! stays inside its guest line, a flood is cut to the per-call budget and
//! the worker's rate, and the calls (the attacker's and a neighbour's) are
//! served meanwhile.

use bulkhead::sandbox::{LOG_BUDGET_PER_CALL, LOG_BURST};

use super::{Server, config, scratch};

fn hostile_config(dir: &std::path::Path) -> String {
    let hostile = crate::sandbox::guest_path("hostile");
    config(dir, &format!("[plugins.hostile]\npath = \"{hostile}\"\n"))
}

#[test]
fn a_guest_cannot_forge_or_flood_the_hosts_log() {
    let dir = scratch();
    let server = Server::start(&hostile_config(dir.path()), &[]);
    assert_eq!(server.invoke("attacker", "hostile", "log-forge").text(), "forged");
    for _ in 0..10 {
        assert_eq!(server.invoke("attacker", "hostile", "log 5000").text(), "logged");
        assert_eq!(server.invoke("neighbour", "echo", "fine").text(), "fine");
    }
    let log = std::sync::Arc::clone(&server.log);
    let (status, _) = server.terminate();
    assert!(status.success());
    let log = log.lock().unwrap().clone();
    let forged: Vec<&str> = log
        .iter()
        .map(String::as_str)
        .filter(|l| l.contains("admin token accepted"))
        .collect();
    assert_eq!(forged.len(), 1, "{forged:?}");
    assert!(
        forged[0].contains("ok\\nERROR bulkhead"),
        "the newline is escaped: {}",
        forged[0]
    );
    assert!(!forged[0].contains('\u{1b}'), "no escape sequence reaches the log");
    let flood = log.iter().filter(|l| l.contains("LLLLLLLL")).count();
    // Ten calls of 5000 lines: the per-call budget cuts each to 1000, and
    // the worker's rate to about one burst over the test's few seconds.
    assert!(
        flood <= LOG_BURST as usize + 10 * 200,
        "{flood} lines of the flood reached the log"
    );
    assert!(flood < 10 * LOG_BUDGET_PER_CALL as usize);
    assert!(
        log.iter()
            .any(|l| l.contains("messages per call spent; dropping the rest")),
        "the drop is reported"
    );
    for line in log.iter().filter(|l| l.contains("LLLLLLLL")) {
        assert!(line.len() < 4096 + 1024, "a line of {} bytes", line.len());
    }
}
