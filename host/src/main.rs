//! The `bulkhead` binary.

fn main() {
    println!("bulkhead {}", env!("CARGO_PKG_VERSION"));
}
