//! Components written in WAT for attacks a Rust toolchain cannot express:
//! a start function (which runs when the component is instantiated), and
//! wasm features the host turns off. Each exports a working handler (it
//! returns its payload), so each passes the upload's type checks.

/// The handler part: a core module instance `$i` with memory, realloc and
/// `handle`, lifted and exported as `bulkhead:plugin/handler@0.1.0`. `module`
/// is the core module's text (it must define `$handle`, `$realloc` and
/// export "memory"); `instantiate` the core instance `$i` of it.
fn handler(imports: &str, module: &str, instantiate: &str) -> String {
    format!(
        r#"(component
  {imports}
  {module}
  {instantiate}
  (type $request (record (field "namespace" string) (field "session" string) (field "payload" (list u8))))
  (type $error (variant (case "invalid-input" string) (case "failed" string)))
  (func $handle (param "req" $request) (result (result (list u8) (error $error)))
     (canon lift (core func $i "handle") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (component $api
    (import "request-in" (type $req (eq $request)))
    (import "error-in" (type $err (eq $error)))
    (import "handle-in" (func $h (param "req" $req) (result (result (list u8) (error $err)))))
    (export $req2 "request" (type $req))
    (export $err2 "error" (type $err))
    (export "handle" (func $h) (func (param "req" $req2) (result (result (list u8) (error $err2))))))
  (instance $inst (instantiate $api
    (with "request-in" (type $request)) (with "error-in" (type $error)) (with "handle-in" (func $handle))))
  (export "bulkhead:plugin/handler@0.1.0" (instance $inst)))"#
    )
}

/// The core functions every handler module has: a bump allocator and an
/// echoing `handle`.
const CORE: &str = r#"
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 4096))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $heap))
      (global.set $heap (i32.add (global.get $heap) (local.get 3)))
      (local.get $p))
    (func (export "handle") (param i32 i32 i32 i32 i32 i32) (result i32)
      (i32.store8 (i32.const 1024) (i32.const 0))
      (i32.store (i32.const 1028) (local.get 4))
      (i32.store (i32.const 1032) (local.get 5))
      (i32.const 1024))"#;

/// An echoing component whose start function runs `body` (WAT
/// instructions); `$sub` (`subscribe-duration`, nanoseconds to a pollable)
/// and `$block` (`pollable.block`) are in scope.
pub(crate) fn with_start(body: &str) -> Vec<u8> {
    let imports = r#"
  (import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type (sub resource)))
    (export "[method]pollable.block" (func (param "self" (borrow 0))))))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (alias outer 1 $pollable (type))
    (export "pollable" (type (eq 0)))
    (export "subscribe-duration" (func (param "when" u64) (result (own 1))))))
  (core func $sub (canon lower (func $clock "subscribe-duration")))
  (core func $block (canon lower (func $poll "[method]pollable.block")))"#;
    let module = format!(
        r#"(core module $m
    (import "w" "sub" (func $sub (param i64) (result i32)))
    (import "w" "block" (func $block (param i32)))
    {CORE}
    (func $start {body})
    (start $start))"#
    );
    let instantiate = r#"(core instance $w (export "sub" (func $sub)) (export "block" (func $block)))
  (core instance $i (instantiate $m (with "w" (instance $w))))"#;
    wat::parse_str(handler(imports, &module, instantiate)).expect("a valid component")
}

/// An echoing component whose core module also declares `extra` (module
/// fields, e.g. a function using a wasm feature the host turns off).
pub(crate) fn with_module_fields(extra: &str) -> Vec<u8> {
    let module = format!("(core module $m {CORE} {extra})");
    wat::parse_str(handler("", &module, "(core instance $i (instantiate $m))")).expect("a valid component")
}

/// A start function that blocks on a clock for `secs` seconds: it costs no
/// fuel, so only a wall-clock deadline stops it.
pub(crate) fn blocking_start(secs: u64) -> Vec<u8> {
    with_start(&format!(
        "(call $block (call $sub (i64.const {})))",
        secs * 1_000_000_000
    ))
}
