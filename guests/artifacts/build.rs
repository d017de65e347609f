//! Cross-compiles every guest crate in `guests/` to a `wasm32-wasip2`
//! component and writes `guests.rs` into `OUT_DIR`: one path constant per
//! guest and the `foreach_guest!` macro with which the test suite proves that
//! each guest has a test.
//!
//! The guests are built by a nested `cargo build` with its own target
//! directory (next to the outer one, so it is shared by every profile and
//! reused between runs). rustup does not add a target to a toolchain that is
//! already installed, so a missing `wasm32-wasip2` is added here first.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let guests_dir = manifest_dir.parent().expect("artifacts lives in guests/").to_path_buf();
    let workspace = guests_dir
        .parent()
        .expect("guests/ lives in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    let guests = discover(&guests_dir);
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());
    println!("cargo:rerun-if-changed={}", workspace.join("Cargo.lock").display());
    for guest in &guests {
        println!("cargo:rerun-if-changed={}", guests_dir.join(guest).display());
    }

    ensure_target();

    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out: build the guests
    // once for every profile, beside it.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map_or_else(|| out_dir.join("guests"), |t| t.join("guests-wasm"));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args(["build", "--release", "--locked", "--target", TARGET, "--target-dir"])
        .arg(&target_dir);
    for guest in &guests {
        cmd.arg("-p").arg(format!("guest-{guest}"));
    }
    // The outer build's flags and wrappers (clippy, coverage) are for the
    // host target; they must not leak into the guests' build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("failed to run cargo for the guests");
    assert!(status.success(), "building the guests for {TARGET} failed: {status}");

    let mut generated = String::new();
    let mut listing = String::new();
    for guest in &guests {
        let built = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("guest_{}.wasm", guest.replace('-', "_")));
        let dest = out_dir.join(format!("{guest}.wasm"));
        fs::copy(&built, &dest).unwrap_or_else(|e| panic!("copy {} -> {}: {e}", built.display(), dest.display()));
        let konst = guest.to_uppercase().replace('-', "_");
        writeln!(generated, "/// Path of the compiled `{guest}` guest component.").unwrap();
        writeln!(generated, "pub const {konst}: &str = {:?};", dest.display().to_string()).unwrap();
        writeln!(listing, "    ({guest:?}, {konst}),").unwrap();
    }
    writeln!(generated, "/// Every guest, as (name, path of its component).").unwrap();
    writeln!(generated, "pub const GUESTS: &[(&str, &str)] = &[\n{listing}];").unwrap();
    writeln!(
        generated,
        "/// Calls `$mac!(name)` for each guest; the test suite uses it to\n\
         /// fail the build when a guest has no test module of its name.\n\
         #[macro_export]\nmacro_rules! foreach_guest {{\n    ($mac:ident) => {{"
    )
    .unwrap();
    for guest in &guests {
        writeln!(generated, "        $mac!({});", guest.replace('-', "_")).unwrap();
    }
    writeln!(generated, "    }};\n}}").unwrap();
    fs::write(out_dir.join("guests.rs"), generated).expect("write guests.rs");
}

/// Every directory of `guests/` holding a crate named `guest-*`, sorted.
fn discover(guests_dir: &Path) -> Vec<String> {
    let mut guests: Vec<String> = fs::read_dir(guests_dir)
        .expect("read guests/")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let manifest = fs::read_to_string(path.join("Cargo.toml")).ok()?;
            let name = path.file_name()?.to_str()?.to_owned();
            manifest.contains(&format!("name = \"guest-{name}\"")).then_some(name)
        })
        .collect();
    guests.sort();
    assert!(!guests.is_empty(), "no guest crates found in {}", guests_dir.display());
    guests
}

/// Adds the wasm target to the active toolchain when it is missing.
fn ensure_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("failed to run rustc --print sysroot");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(TARGET).exists() {
        return;
    }
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", TARGET]);
    if let Some(toolchain) = env::var_os("RUSTUP_TOOLCHAIN") {
        cmd.arg("--toolchain").arg(toolchain);
    }
    let status = cmd.status().unwrap_or_else(|e| {
        panic!("the {TARGET} target is missing and `rustup target add {TARGET}` could not run: {e}")
    });
    assert!(status.success(), "`rustup target add {TARGET}` failed: {status}");
}
