//! Rust guest SDK for `crisis` plugins.
//!
//! A crisis plugin is a WebAssembly component (target `wasm32-wasip2`) that
//! implements one world of the WIT package `crisis:plugin@0.1.2` (folder `wit/crisis-plugin@0.1.0`, the newest 0.1.x):
//! `notifier`, `appeasement`, `drill` or `classifier`. This crate wraps the
//! `wit-bindgen` bindings for those worlds, gives each world a small trait,
//! and provides an export macro, so a plugin is a struct, one trait impl and
//! one macro call.
//!
//! Enable exactly one cargo feature, the world you implement:
//!
//! ```toml
//! crisis-plugin-sdk = { path = "...", features = ["notifier"] }
//! ```
//!
//! ```ignore
//! use crisis_plugin_sdk::notifier::*;
//! struct Hello;
//! impl Notifier for Hello {
//!     fn describe() -> PluginInfo { PluginInfo::new("hello", "0.1.0", "says hello") }
//!     fn send(ctx: Invocation, note: Notification) -> Result<Receipt, PluginError> {
//!         log(Level::Info, &format!("{} for {}", note.subject, ctx.incident_id));
//!         Ok(Receipt { provider_id: None, http_status: None, detail: "logged".into() })
//!     }
//! }
//! crisis_plugin_sdk::export_notifier!(Hello);
//! ```
//!
//! Why one feature per world: `wit-bindgen` embeds a description of the world
//! in the compiled module, and a module that carried every world would have
//! to export every interface.

#[cfg(any(
    all(feature = "notifier", feature = "appeasement"),
    all(feature = "notifier", feature = "drill"),
    all(feature = "notifier", feature = "classifier"),
    all(feature = "appeasement", feature = "drill"),
    all(feature = "appeasement", feature = "classifier"),
    all(feature = "drill", feature = "classifier"),
))]
compile_error!(
    "crisis-plugin-sdk: enable exactly one of the features `notifier`, `appeasement`, `drill`, `classifier` \
     (cargo unifies features within one build; build plugins of different worlds separately)"
);

/// Helpers shared by every world, generated per world by `common!`.
macro_rules! common {
    () => {
        pub use self::crisis::plugin::host::{Level, Secret};
        pub use self::crisis::plugin::types::{
            Category, Incident, Invocation, PluginError, PluginInfo, RunMode, Severity,
        };

        /// Log a message through the host (size-capped, tagged with the
        /// plugin and invocation by the host).
        pub fn log(level: Level, message: &str) {
            self::crisis::plugin::host::log(level, message)
        }

        /// Read a configuration value (grant config merged with target config).
        pub fn config(key: &str) -> Option<String> {
            self::crisis::plugin::host::config(key)
        }

        /// Read a required configuration value, or a `config` error naming it.
        pub fn require_config(key: &str) -> Result<String, PluginError> {
            config(key).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                PluginError::Config(format!(
                    "missing config key `{key}`: set it in the notification target's `config` or the plugin grant's `config`"
                ))
            })
        }

        /// Opaque handle to a granted secret (the value stays in the host).
        pub fn secret(name: &str) -> Result<Secret, PluginError> {
            self::crisis::plugin::host::get_secret(name)
        }

        /// HMAC-SHA256 computed by the host with the signing secret granted
        /// under `secret_name`; every `{secret}` in either template is
        /// replaced by its value inside the host (API 0.1.1: an older host
        /// refuses to load a plugin that calls this).
        pub fn hmac_sha256(secret_name: &str, key_template: &str, message_template: &str) -> Result<Vec<u8>, PluginError> {
            self::crisis::plugin::host::hmac_sha256(secret_name, key_template, message_template)
        }

        impl PluginInfo {
            /// Info with no declared hosts and no config keys.
            pub fn new(name: &str, version: &str, description: &str) -> Self {
                PluginInfo {
                    name: name.into(),
                    version: version.into(),
                    description: description.into(),
                    allowed_hosts: Vec::new(),
                    config_keys: Vec::new(),
                }
            }
        }

        impl Severity {
            /// `sev1` .. `sev5`.
            pub fn as_str(&self) -> &'static str {
                match self {
                    Severity::Sev1 => "sev1",
                    Severity::Sev2 => "sev2",
                    Severity::Sev3 => "sev3",
                    Severity::Sev4 => "sev4",
                    Severity::Sev5 => "sev5",
                }
            }
            /// 1 (worst) .. 5.
            pub fn rank(&self) -> u8 {
                match self {
                    Severity::Sev1 => 1,
                    Severity::Sev2 => 2,
                    Severity::Sev3 => 3,
                    Severity::Sev4 => 4,
                    Severity::Sev5 => 5,
                }
            }
        }

        impl Category {
            /// The category as written in playbooks.
            pub fn as_str(&self) -> &'static str {
                match self {
                    Category::ProductQuality => "product-quality",
                    Category::ServiceAttitude => "service-attitude",
                    Category::ServiceProcess => "service-process",
                    Category::Price => "price",
                    Category::Other => "other",
                }
            }
        }
    };
}

/// Encodings providers ask for when signing or posting forms.
pub mod encode {
    /// Standard base64 with padding (RFC 4648 §4), e.g. for signatures.
    pub fn base64(bytes: &[u8]) -> String {
        data_encoding::BASE64.encode(bytes)
    }

    /// Percent-encoding of everything but RFC 3986 unreserved characters:
    /// safe in a query value and in an `application/x-www-form-urlencoded`
    /// body (a space becomes `%20`, which form decoders accept).
    pub fn percent(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for b in text.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    /// An `application/x-www-form-urlencoded` body from key/value pairs.
    pub fn form(pairs: &[(&str, &str)]) -> String {
        pairs.iter().map(|(k, v)| format!("{}={}", percent(k), percent(v))).collect::<Vec<_>>().join("&")
    }

    /// Text with `& < > " '` escaped, for XML documents such as TwiML.
    pub fn xml_text(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&apos;"),
                // Control characters other than tab and newlines are not allowed in XML 1.0.
                c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
                c => out.push(c),
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn encodings() {
            assert_eq!(super::base64(b"AC123:tok"), "QUMxMjM6dG9r");
            assert_eq!(super::percent("a b+/=é"), "a%20b%2B%2F%3D%C3%A9");
            assert_eq!(super::form(&[("To", "+1 555"), ("Body", "x&y")]), "To=%2B1%20555&Body=x%26y");
            assert_eq!(super::xml_text("<a & 'b'>\u{7}"), "&lt;a &amp; &apos;b&apos;&gt; ");
        }
    }
}

/// The `notifier` world: send a notification, with outbound HTTP through
/// the host's policy (see [`notifier::http`]).
#[cfg(feature = "notifier")]
pub mod notifier {
    wit_bindgen::generate!({
        path: "../wit/crisis-plugin@0.1.0",
        world: "crisis:plugin/notifier",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_notifier_bindings",
        default_bindings_module: "crisis_plugin_sdk::notifier",
    });
    common!();
    pub use self::exports::crisis::plugin::notify::{Notification, Receipt};

    /// Implement this for your notifier and export it with
    /// [`export_notifier!`](crate::export_notifier).
    pub trait Notifier {
        fn describe() -> PluginInfo;
        fn send(ctx: Invocation, note: Notification) -> Result<Receipt, PluginError>;
    }

    pub mod http;
}

/// The `appeasement` world: compose the messages for one customer. No network.
#[cfg(feature = "appeasement")]
pub mod appeasement {
    wit_bindgen::generate!({
        path: "../wit/crisis-plugin@0.1.0",
        world: "crisis:plugin/appeasement",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_appeasement_bindings",
        default_bindings_module: "crisis_plugin_sdk::appeasement",
    });
    common!();
    pub use self::exports::crisis::plugin::appease::{Channel, Customer, Message};

    impl Channel {
        pub fn as_str(&self) -> &'static str {
            match self {
                Channel::Phone => "phone",
                Channel::Sms => "sms",
                Channel::Email => "email",
                Channel::Social => "social",
            }
        }
    }

    /// Implement this for your appeasement script and export it with
    /// [`export_appeasement!`](crate::export_appeasement).
    pub trait Appeasement {
        fn describe() -> PluginInfo;
        fn compose(ctx: Invocation, inc: Incident, who: Customer) -> Result<Vec<Message>, PluginError>;
    }
}

/// The `drill` world: plan a scenario of timed injects and score a journal.
#[cfg(feature = "drill")]
pub mod drill {
    wit_bindgen::generate!({
        path: "../wit/crisis-plugin@0.1.0",
        world: "crisis:plugin/drill",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_drill_bindings",
        default_bindings_module: "crisis_plugin_sdk::drill",
    });
    common!();
    pub use self::exports::crisis::plugin::simulate::{Criterion, Inject, InjectKind, Scenario};

    /// Implement this for your drill simulator and export it with
    /// [`export_drill!`](crate::export_drill).
    pub trait Drill {
        fn describe() -> PluginInfo;
        fn plan(ctx: Invocation, inc: Incident, params: Vec<(String, String)>) -> Result<Scenario, PluginError>;
        fn score(ctx: Invocation, journal_json: String) -> Result<Vec<Criterion>, PluginError>;
    }
}

/// The `classifier` world: say which complaint category a customer's text
/// belongs to (API 0.1.2: an older host refuses to load it). No network.
#[cfg(feature = "classifier")]
pub mod classifier {
    wit_bindgen::generate!({
        path: "../wit/crisis-plugin@0.1.0",
        world: "crisis:plugin/classifier",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_classifier_bindings",
        default_bindings_module: "crisis_plugin_sdk::classifier",
    });
    common!();
    pub use self::exports::crisis::plugin::classify::{Channel, Classification};

    impl Channel {
        /// `phone`, `sms`, `email` or `social`.
        pub fn as_str(&self) -> &'static str {
            match self {
                Channel::Phone => "phone",
                Channel::Sms => "sms",
                Channel::Email => "email",
                Channel::Social => "social",
            }
        }
    }

    impl Classification {
        /// A classification with `confidence` clamped to 0..=1 (NaN becomes
        /// 0), so a computed score can never make the host refuse the answer.
        pub fn new(category: Category, confidence: f32, labels: Vec<(String, String)>) -> Self {
            let confidence = if confidence.is_nan() { 0.0 } else { confidence.clamp(0.0, 1.0) };
            Classification { category, confidence, labels }
        }
    }

    /// Implement this for your classifier and export it with
    /// [`export_classifier!`](crate::export_classifier).
    pub trait Classifier {
        fn describe() -> PluginInfo;
        /// `text` is the complaint with contact details replaced by the
        /// host; `locale` is a BCP 47 tag (`zh-CN`, `en`) or empty.
        fn classify(ctx: Invocation, text: String, channel: Channel, locale: String) -> Result<Classification, PluginError>;
    }
}

/// Export a type implementing [`notifier::Notifier`] as the component's
/// `meta` and `notifier` interfaces.
#[cfg(feature = "notifier")]
#[macro_export]
macro_rules! export_notifier {
    ($ty:ty) => {
        const _: () = {
            struct __CrisisExport;
            impl $crate::notifier::exports::crisis::plugin::meta::Guest for __CrisisExport {
                fn describe() -> $crate::notifier::PluginInfo {
                    <$ty as $crate::notifier::Notifier>::describe()
                }
            }
            impl $crate::notifier::exports::crisis::plugin::notify::Guest for __CrisisExport {
                fn send(
                    ctx: $crate::notifier::Invocation,
                    note: $crate::notifier::Notification,
                ) -> ::core::result::Result<$crate::notifier::Receipt, $crate::notifier::PluginError> {
                    <$ty as $crate::notifier::Notifier>::send(ctx, note)
                }
            }
            $crate::notifier::__export_notifier_bindings!(__CrisisExport with_types_in $crate::notifier);
        };
    };
}

/// Export a type implementing [`appeasement::Appeasement`] as the
/// component's `meta` and `appeasement` interfaces.
#[cfg(feature = "appeasement")]
#[macro_export]
macro_rules! export_appeasement {
    ($ty:ty) => {
        const _: () = {
            struct __CrisisExport;
            impl $crate::appeasement::exports::crisis::plugin::meta::Guest for __CrisisExport {
                fn describe() -> $crate::appeasement::PluginInfo {
                    <$ty as $crate::appeasement::Appeasement>::describe()
                }
            }
            impl $crate::appeasement::exports::crisis::plugin::appease::Guest for __CrisisExport {
                fn compose(
                    ctx: $crate::appeasement::Invocation,
                    inc: $crate::appeasement::Incident,
                    who: $crate::appeasement::Customer,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<$crate::appeasement::Message>,
                    $crate::appeasement::PluginError,
                > {
                    <$ty as $crate::appeasement::Appeasement>::compose(ctx, inc, who)
                }
            }
            $crate::appeasement::__export_appeasement_bindings!(__CrisisExport with_types_in $crate::appeasement);
        };
    };
}

/// Export a type implementing [`drill::Drill`] as the component's `meta`
/// and `drill` interfaces.
#[cfg(feature = "drill")]
#[macro_export]
macro_rules! export_drill {
    ($ty:ty) => {
        const _: () = {
            struct __CrisisExport;
            impl $crate::drill::exports::crisis::plugin::meta::Guest for __CrisisExport {
                fn describe() -> $crate::drill::PluginInfo {
                    <$ty as $crate::drill::Drill>::describe()
                }
            }
            impl $crate::drill::exports::crisis::plugin::simulate::Guest for __CrisisExport {
                fn plan(
                    ctx: $crate::drill::Invocation,
                    inc: $crate::drill::Incident,
                    params: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::core::result::Result<$crate::drill::Scenario, $crate::drill::PluginError> {
                    <$ty as $crate::drill::Drill>::plan(ctx, inc, params)
                }
                fn score(
                    ctx: $crate::drill::Invocation,
                    journal_json: ::std::string::String,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<$crate::drill::Criterion>,
                    $crate::drill::PluginError,
                > {
                    <$ty as $crate::drill::Drill>::score(ctx, journal_json)
                }
            }
            $crate::drill::__export_drill_bindings!(__CrisisExport with_types_in $crate::drill);
        };
    };
}

/// Export a type implementing [`classifier::Classifier`] as the component's
/// `meta` and `classify` interfaces.
#[cfg(feature = "classifier")]
#[macro_export]
macro_rules! export_classifier {
    ($ty:ty) => {
        const _: () = {
            struct __CrisisExport;
            impl $crate::classifier::exports::crisis::plugin::meta::Guest for __CrisisExport {
                fn describe() -> $crate::classifier::PluginInfo {
                    <$ty as $crate::classifier::Classifier>::describe()
                }
            }
            impl $crate::classifier::exports::crisis::plugin::classify::Guest for __CrisisExport {
                fn classify(
                    ctx: $crate::classifier::Invocation,
                    text: ::std::string::String,
                    channel: $crate::classifier::Channel,
                    locale: ::std::string::String,
                ) -> ::core::result::Result<$crate::classifier::Classification, $crate::classifier::PluginError> {
                    <$ty as $crate::classifier::Classifier>::classify(ctx, text, channel, locale)
                }
            }
            $crate::classifier::__export_classifier_bindings!(__CrisisExport with_types_in $crate::classifier);
        };
    };
}
