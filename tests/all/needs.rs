//! Tests that need a facility of the machine (writable cgroups, a tool):
//! when it is missing, the test fails and names it. Under `CI=true` it
//! always fails then; on a developer's own machine
//! `BULKHEAD_TEST_SKIP_MISSING=1` turns that into a skip, printed as such.

/// The variable that lets a developer skip tests whose facility is missing.
pub(crate) const SKIP_VAR: &str = "BULKHEAD_TEST_SKIP_MISSING";

/// Whether the test may go on: `true` when `available`; otherwise a
/// failure naming `facility`, or, with [`SKIP_VAR`] set outside CI, a
/// printed skip and `false`.
pub(crate) fn facility(test: &str, facility: &str, available: bool) -> bool {
    if available {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let opted_out = std::env::var_os(SKIP_VAR).is_some_and(|v| v == "1");
    if opted_out && !ci {
        eprintln!("SKIPPED {test}: needs {facility}, which this machine lacks ({SKIP_VAR}=1)");
        return false;
    }
    panic!(
        "{test} needs {facility}, which this machine lacks{}",
        if ci {
            " (CI=true: every test must run)".to_owned()
        } else {
            format!("; set {SKIP_VAR}=1 to skip such tests on a developer machine")
        }
    );
}
