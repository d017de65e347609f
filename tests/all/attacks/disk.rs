//! A disk quota per namespace (`limits.disk`, `limits.disk_files`): each
//! namespace's `/data` is its own loop-mounted ext4 filesystem. A tenant that
//! fills it gets its own error inside the guest, while other tenants keep
//! writing and a deploy succeeds; the usage shows in `/v1/processes` and
//! `/metrics`; the data survives the host's restart; data written before the
//! quota was set is moved into it, not lost.

use crate::service::{Server, config, scratch};

fn quotas_possible() -> bool {
    rustix::process::geteuid().is_root()
        && std::path::Path::new("/dev/loop-control").exists()
        && std::process::Command::new("mkfs.ext4")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
}

const QUOTA: &str = "[tenants.full]\n[tenants.full.limits]\ndisk = \"4MiB\"\ndisk_files = 1024\n\
                     [tenants.few]\n[tenants.few.limits]\ndisk = \"16MiB\"\ndisk_files = 32\n\
                     [tenants.roomy]\n[tenants.roomy.limits]\ndisk = \"64MiB\"\n";

/// Unmounts whatever is still mounted under a test's directory when the
/// test ends (a host killed by a failing test leaves its quota mounts).
struct Unmounts(std::path::PathBuf);

impl Drop for Unmounts {
    fn drop(&mut self) {
        let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return;
        };
        let prefix = self.0.display().to_string();
        let mut points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&prefix))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for point in points {
            let _ = rustix::mount::unmount(point, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// A scratch directory whose quota mounts are undone when the test ends;
/// `None` (a printed skip) or a failure naming what is missing when the
/// machine cannot make quotas (see `needs::facility`).
fn quota_scratch(test: &str) -> Option<(tempfile::TempDir, Unmounts)> {
    if !crate::needs::facility(
        test,
        "root, loop devices and mkfs.ext4 (disk quotas)",
        quotas_possible(),
    ) {
        return None;
    }
    let dir = scratch();
    let unmounts = Unmounts(dir.path().to_owned());
    Some((dir, unmounts))
}

#[test]
fn a_tenant_that_fills_its_quota_gets_its_own_error_and_its_neighbours_write_and_deploy() {
    let Some((dir, _unmounts)) =
        quota_scratch("a_tenant_that_fills_its_quota_gets_its_own_error_and_its_neighbours_write_and_deploy")
    else {
        return;
    };
    let server = Server::start(&config(dir.path(), QUOTA), &[]);
    assert_eq!(server.invoke("full", "fs", "write /data/keep kept").status, 200);
    // Bytes: 60 KiB a file until the 4 MiB filesystem is full.
    let chunk = "z".repeat(60 << 10);
    let mut refused = None;
    for i in 0..200 {
        let reply = server.invoke("full", "fs", &format!("write /data/big{i} {chunk}"));
        if reply.status != 200 {
            refused = Some(reply);
            break;
        }
        // The neighbour writes between the attacker's writes.
        assert_eq!(
            server.invoke("roomy", "fs", &format!("write /data/n{i} ok")).status,
            200
        );
    }
    let refused = refused.expect("4 MiB of quota took 200 writes of 60 KiB");
    assert_eq!(refused.json()["error"]["kind"], "guest_error", "{}", refused.text());
    // Its own write failed (WASI reports a failed stream write as an I/O
    // error; the host's ENOSPC is behind it).
    assert!(refused.text().contains("write /data/big"), "{}", refused.text());
    // The attacker's worker lives on; its neighbour writes and a deploy works.
    assert_eq!(server.invoke("full", "fs", "read /data/keep").text(), "kept");
    assert_eq!(server.invoke("roomy", "fs", "write /data/after ok").status, 200);
    assert_eq!(server.invoke("other", "fs", "write /data/x ok").status, 200);
    let echo = std::fs::read(crate::sandbox::guest_path("echo")).unwrap();
    let deployed = server.call("PUT", "/v1/plugins/echo2", &[], &echo);
    assert!(deployed.status / 100 == 2, "{}", deployed.text());
    assert_eq!(server.invoke("other", "echo2", "deployed").text(), "deployed");

    // Usage is reported.
    let processes = server.call("GET", "/v1/processes", &[], b"").json();
    let full = processes
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["namespace"] == "full")
        .unwrap()
        .clone();
    let (used, limit) = (
        full["disk"]["used_bytes"].as_u64().unwrap(),
        full["disk"]["limit_bytes"].as_u64().unwrap(),
    );
    assert!(limit <= 4 << 20 && used > limit * 9 / 10, "{full}");
    let metrics = server.call("GET", "/metrics", &[], b"").text();
    assert!(
        metrics.contains("bulkhead_namespace_disk_used{namespace=\"full\",unit=\"bytes\"}"),
        "{metrics}"
    );

    // Files: `few` has 32 inodes (the filesystem keeps some); small files
    // run out of them long before bytes, `roomy` (65536) writes on.
    let mut refused = None;
    for i in 0..200 {
        let reply = server.invoke("few", "fs", &format!("write /data/small{i} x"));
        if reply.status != 200 {
            refused = Some((i, reply));
            break;
        }
        assert_eq!(
            server.invoke("roomy", "fs", &format!("write /data/small{i} x")).status,
            200
        );
    }
    let (count, refused) = refused.expect("32 inodes took 200 files");
    assert!(count <= 32, "{count} files in 32 inodes");
    assert_eq!(refused.json()["error"]["kind"], "guest_error", "{}", refused.text());
    let (status, _) = server.terminate();
    assert!(status.success(), "{status}");

    // The data is still there for the next host.
    let server = Server::start(&config(dir.path(), QUOTA), &[]);
    assert_eq!(server.invoke("full", "fs", "read /data/keep").text(), "kept");
    assert_eq!(server.invoke("roomy", "fs", "read /data/after").text(), "ok");
    let (status, _) = server.terminate();
    assert!(status.success(), "{status}");
}

#[test]
fn data_written_before_a_quota_is_moved_into_it_not_lost() {
    let Some((dir, _unmounts)) = quota_scratch("data_written_before_a_quota_is_moved_into_it_not_lost") else {
        return;
    };
    let server = Server::start(&config(dir.path(), ""), &[]);
    assert_eq!(server.invoke("full", "fs", "write /data/old before").status, 200);
    let (status, _) = server.terminate();
    assert!(status.success(), "{status}");
    let server = Server::start(&config(dir.path(), QUOTA), &[]);
    assert_eq!(server.invoke("full", "fs", "read /data/old").text(), "before");
    let files = server.call("GET", "/v1/processes", &[], b"").json();
    assert!(files.to_string().contains("limit_bytes"), "{files}");
    let (status, _) = server.terminate();
    assert!(status.success(), "{status}");
}
