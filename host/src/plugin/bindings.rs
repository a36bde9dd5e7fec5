//! Host bindings per WIT version.
//!
//! Why one module per version: when `crisis:plugin@0.2.0` ships, it gets a
//! sibling module and conversions into the plain types in `api.rs`, and
//! components built against 0.1.x keep working (Zed and Spin do the same).
//! The synthetic world `all` imports `host` and exports every interface, so
//! one set of generated types serves every world; each call loads only
//! the interface it needs (`GuestIndices::new` fails if it is not exported).

pub(crate) mod v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../plugins/wit/crisis-plugin@0.1.0",
        inline: "
            package crisis:host-bindings;
            world all {
                import crisis:plugin/host@0.1.2;
                export crisis:plugin/meta@0.1.2;
                export crisis:plugin/notify@0.1.2;
                export crisis:plugin/appease@0.1.2;
                export crisis:plugin/simulate@0.1.2;
                export crisis:plugin/classify@0.1.2;
            }
        ",
        world: "crisis:host-bindings/all",
        exports: { default: async },
        with: {
            "crisis:plugin/host.secret": crate::plugin::secret::SecretHandle,
        },
    });
}
