//! Hostile or broken uploads: each is refused as `invalid_plugin` with a
//! message that says what is wrong, and none panics.

use bulkhead::sandbox::{InvalidPlugin, PluginError, SandboxConfig};

use super::{Harness, guest_path};

fn refused(h: &Harness, what: &str, bytes: &[u8]) -> InvalidPlugin {
    match h.sandbox.compile(bytes) {
        Err(PluginError::Invalid(invalid)) => invalid,
        Err(other) => panic!("{what}: a host error instead of invalid_plugin: {other}"),
        Ok(_) => panic!("{what}: accepted"),
    }
}

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap_or_else(|e| panic!("test WAT does not parse: {e}"))
}

/// xorshift: deterministic "random" bytes without a dependency.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn garbage_is_not_webassembly() {
    let h = Harness::new();
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), vec![]),
        ("text".into(), b"hello, plugin".to_vec()),
        ("magic only".into(), b"\0asm".to_vec()),
        ("ELF".into(), b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec()),
        ("WAT text".into(), b"(component)".to_vec()),
    ];
    for (seed, len) in [(1, 1), (2, 7), (3, 100), (4, 4096), (5, 1 << 16)] {
        cases.push((format!("random {len} bytes"), noise(seed, len)));
    }
    for (what, bytes) in cases {
        assert_eq!(refused(&h, &what, &bytes), InvalidPlugin::NotWasm, "{what}");
    }
}

#[test]
fn a_component_header_followed_by_garbage_is_malformed() {
    let h = Harness::new();
    for seed in 1..=3 {
        let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
        bytes.extend(noise(seed, 256));
        let err = refused(&h, "header + noise", &bytes);
        assert!(matches!(err, InvalidPlugin::Malformed(_)), "{err}");
    }
}

#[test]
fn truncated_components_are_malformed() {
    let h = Harness::new();
    let echo = std::fs::read(guest_path("echo")).unwrap();
    // The bare 8-byte header is a valid, empty component: it exports nothing.
    let err = refused(&h, "echo cut at 8", &echo[..8]);
    assert!(matches!(err, InvalidPlugin::MissingExport { .. }), "{err}");
    for len in [9, 100, echo.len() / 2, echo.len() - 1] {
        let err = refused(&h, &format!("echo cut at {len}"), &echo[..len]);
        assert!(matches!(err, InvalidPlugin::Malformed(_)), "cut at {len}: {err}");
        assert!(err.to_string().starts_with("not a valid component: "), "{err}");
    }
}

#[test]
fn trailing_bytes_after_a_component_are_malformed() {
    let h = Harness::new();
    let mut echo = std::fs::read(guest_path("echo")).unwrap();
    echo.extend_from_slice(b"\x00\x01\x02trailing");
    let err = refused(&h, "trailing", &echo);
    assert!(matches!(err, InvalidPlugin::Malformed(_)), "{err}");
}

#[test]
fn core_modules_are_refused_with_advice() {
    let h = Harness::new();
    let empty = b"\0asm\x01\0\0\0".to_vec();
    let with_code = wat(r#"(module (func (export "handle") (result i32) i32.const 1) (memory (export "memory") 1))"#);
    for bytes in [empty, with_code] {
        let err = refused(&h, "core module", &bytes);
        assert_eq!(err, InvalidPlugin::CoreModule);
        assert!(err.to_string().contains("not a component"), "{err}");
    }
}

#[test]
fn unknown_binary_versions_are_refused() {
    let h = Harness::new();
    let err = refused(&h, "version 2", b"\0asm\x02\0\0\0");
    assert_eq!(err, InvalidPlugin::UnsupportedVersion([2, 0, 0, 0]));
}

#[test]
fn uploads_over_the_size_limit_are_refused_before_parsing() {
    let h = Harness::new();
    let mut huge = b"\0asm\x0d\0\x01\0".to_vec();
    huge.resize(SandboxConfig::DEFAULT_MAX_PLUGIN_SIZE + 1, 0);
    let err = refused(&h, "oversized", &huge);
    assert_eq!(
        err,
        InvalidPlugin::TooLarge {
            size: SandboxConfig::DEFAULT_MAX_PLUGIN_SIZE + 1,
            limit: SandboxConfig::DEFAULT_MAX_PLUGIN_SIZE
        }
    );

    let small = Harness::with(|c| c.max_plugin_size = 1000);
    let echo = std::fs::read(guest_path("echo")).unwrap();
    assert!(matches!(
        refused(&small, "echo over 1000 bytes", &echo),
        InvalidPlugin::TooLarge { .. }
    ));
}

#[test]
fn a_component_of_another_world_is_missing_the_handler() {
    let h = Harness::new();
    let empty = wat("(component)");
    let err = refused(&h, "empty component", &empty);
    assert!(matches!(err, InvalidPlugin::MissingExport { .. }), "{err}");
    assert!(err.to_string().contains("bulkhead:plugin/handler@0.1.0"), "{err}");

    let other = wat(r#"(component
             (core module $m (func (export "run") (result i32) i32.const 0))
             (core instance $i (instantiate $m))
             (func $run (result u32) (canon lift (core func $i "run")))
             (instance $api (export "run" (func $run)))
             (export "other:plugin/api@1.0.0" (instance $api)))"#);
    let err = refused(&h, "other world", &other);
    assert!(matches!(err, InvalidPlugin::MissingExport { .. }), "{err}");
    assert!(
        err.to_string().contains("other:plugin/api@1.0.0"),
        "it lists what it found: {err}"
    );
}

#[test]
fn a_handler_with_the_wrong_signature_is_refused() {
    let h = Harness::new();
    let wrong_types = wat(r#"(component
             (core module $m (func (export "handle") (result i32) i32.const 0))
             (core instance $i (instantiate $m))
             (func $handle (result u32) (canon lift (core func $i "handle")))
             (instance $api (export "handle" (func $handle)))
             (export "bulkhead:plugin/handler@0.1.0" (instance $api)))"#);
    let err = refused(&h, "handle returns u32", &wrong_types);
    assert!(matches!(err, InvalidPlugin::WrongSignature { .. }), "{err}");

    let no_handle = wat(r#"(component
             (core module $m (func (export "other") (result i32) i32.const 0))
             (core instance $i (instantiate $m))
             (func $other (result u32) (canon lift (core func $i "other")))
             (instance $api (export "other" (func $other)))
             (export "bulkhead:plugin/handler@0.1.0" (instance $api)))"#);
    let err = refused(&h, "handler without handle", &no_handle);
    assert!(matches!(err, InvalidPlugin::WrongSignature { .. }), "{err}");

    let as_func = wat(r#"(component
             (core module $m (func (export "handle") (result i32) i32.const 0))
             (core instance $i (instantiate $m))
             (func $handle (result u32) (canon lift (core func $i "handle")))
             (export "bulkhead:plugin/handler@0.1.0" (func $handle)))"#);
    let err = refused(&h, "handler as a function", &as_func);
    assert!(matches!(err, InvalidPlugin::WrongSignature { .. }), "{err}");
}

#[test]
fn imports_the_host_does_not_provide_are_refused() {
    let h = Harness::new();
    let unknown = wat(r#"(component (import "evil:net/raw-socket@1.0.0" (instance (export "open" (func)))))"#);
    let err = refused(&h, "unknown import", &unknown);
    assert!(matches!(err, InvalidPlugin::UnsatisfiableImport(_)), "{err}");
    assert!(err.to_string().contains("evil:net/raw-socket@1.0.0"), "{err}");

    let mistyped = wat(r#"(component (import "wasi:cli/environment@0.2.0"
             (instance (export "get-environment" (func (result u32))))))"#);
    let err = refused(&h, "mistyped WASI import", &mistyped);
    assert!(matches!(err, InvalidPlugin::UnsatisfiableImport(_)), "{err}");

    let bare_func = wat(r#"(component (import "steal-secrets" (func)))"#);
    let err = refused(&h, "bare function import", &bare_func);
    assert!(matches!(err, InvalidPlugin::UnsatisfiableImport(_)), "{err}");
}

#[test]
fn a_hostile_upload_leaves_the_sandbox_serving() {
    let h = Harness::new();
    for seed in 10..20 {
        let _ = h.sandbox.compile(&noise(seed, 512));
    }
    let echo = std::fs::read(guest_path("echo")).unwrap();
    assert!(h.sandbox.compile(&echo).is_ok());
}
