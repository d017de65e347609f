//! Host bindings of the `bulkhead:plugin` world, generated from `wit/`, the
//! same directory the guests' `wit_bindgen::generate!` reads.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    exports: { default: async },
});
