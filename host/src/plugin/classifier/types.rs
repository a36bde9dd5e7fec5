//! The classifier world's plain types and their conversions: kept apart from
//! the call itself so the sandboxed call (`call.rs`) can use them without
//! depending on the host that drives it.

use crate::plugin::api::{Category, Channel};
use crate::plugin::bindings::v0_1_0::crisis::plugin::types as t;
use crate::plugin::bindings::v0_1_0::exports::crisis::plugin::classify as c;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Name of the built-in classifier (zh-CN and en keyword lists). Why public:
/// the complaint pipeline uses it when the configuration names no other.
pub const BUILTIN_CLASSIFIER: &str = "keyword-classifier";

/// One complaint to classify. Why a struct: the contact details travel with
/// the text so the host can keep them from the plugin and the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ComplaintInput {
    /// The customer's words as received.
    pub text: String,
    /// The channel the complaint arrived on.
    pub channel: Channel,
    /// BCP 47 tag of the text (`zh-CN`, `en`); empty when unknown.
    pub locale: String,
    /// Contact details of the complainant (phone numbers, e-mail
    /// addresses): replaced in `text` before the plugin sees it and removed
    /// from everything the call returns. Never serialized.
    #[serde(skip)]
    pub contacts: Vec<String>,
}

impl ComplaintInput {
    /// A complaint with no known contact details.
    pub fn new(text: impl Into<String>, channel: Channel, locale: impl Into<String>) -> Self {
        ComplaintInput { text: text.into(), channel, locale: locale.into(), contacts: Vec::new() }
    }
}

/// What a classifier decided. Why typed: the pipeline journals the category
/// and compares the confidence with its threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// The complaint category.
    pub category: Category,
    /// From 0.0 (a guess) to 1.0 (certain); the host refuses anything else.
    pub confidence: f32,
    /// Why, as key/values for the journal (e.g. `matched=退款`), scrubbed.
    pub labels: Vec<(String, String)>,
}

macro_rules! spelled {
    ($ty:ident, $what:literal, { $($variant:ident = $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every spelling, in declaration order, for error messages and help.
            pub const ALL: &'static [&'static str] = &[$($text),+];
            /// The spelling used in configuration, the API and the journal.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }

        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    other => Err(format!("unknown {} `{other}`: use one of {}", $what, $ty::ALL.join(", "))),
                }
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = String;
            fn try_from(s: &str) -> Result<Self, String> {
                s.parse()
            }
        }

        impl From<$ty> for &'static str {
            fn from(v: $ty) -> &'static str {
                v.as_str()
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

spelled!(Category, "complaint category", {
    ProductQuality = "product-quality",
    ServiceAttitude = "service-attitude",
    ServiceProcess = "service-process",
    Price = "price",
    Other = "other",
});

spelled!(Channel, "customer channel", { Phone = "phone", Sms = "sms", Email = "email", Social = "social" });

/// The plugin API's categories back into the engine's vocabulary, one to one.
impl From<Category> for crate::playbook::types::Category {
    fn from(c: Category) -> Self {
        use crate::playbook::types::Category as C;
        match c {
            Category::ProductQuality => C::ProductQuality,
            Category::ServiceAttitude => C::ServiceAttitude,
            Category::ServiceProcess => C::ServiceProcess,
            Category::Price => C::Price,
            Category::Other => C::Other,
        }
    }
}

pub(crate) fn channel_to_wit(ch: Channel) -> c::Channel {
    match ch {
        Channel::Phone => c::Channel::Phone,
        Channel::Sms => c::Channel::Sms,
        Channel::Email => c::Channel::Email,
        Channel::Social => c::Channel::Social,
    }
}

fn category_from_wit(cat: t::Category) -> Category {
    match cat {
        t::Category::ProductQuality => Category::ProductQuality,
        t::Category::ServiceAttitude => Category::ServiceAttitude,
        t::Category::ServiceProcess => Category::ServiceProcess,
        t::Category::Price => Category::Price,
        t::Category::Other => Category::Other,
    }
}

/// The guest's answer, or a permanent error when its confidence is not a
/// number within 0..=1 (a threshold compared with NaN would always fail).
pub(crate) fn from_wit(r: c::Classification) -> Result<Classification, t::PluginError> {
    if !(0.0..=1.0).contains(&r.confidence) {
        return Err(t::PluginError::Permanent(format!(
            "the classifier returned confidence {} for {}; a confidence must be a number from 0.0 to 1.0",
            r.confidence,
            category_from_wit(r.category).as_str()
        )));
    }
    Ok(Classification { category: category_from_wit(r.category), confidence: r.confidence, labels: r.labels })
}
