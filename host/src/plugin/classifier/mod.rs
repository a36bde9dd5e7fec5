//! The `classifier` world: complaint text in, complaint category out.
//!
//! A classifier is the last automatic step of complaint intake before the
//! `other` fallback: it runs with the same sandbox, limits, deadline and
//! quarantine as every plugin call, and never gets network access (checked
//! at load by `capabilities.rs`). The host hands it the complaint text with
//! known contact details already replaced, and scrubs them again from the
//! labels and logs it returns.
//!
//! The category and channel are the plugin API's `Category` and
//! `Channel`; `types.rs` adds their string forms
//! (`product-quality|service-attitude|service-process|price|other`,
//! `phone|sms|email|social`) so other layers convert without generated types.

pub(crate) mod types;

pub use types::{BUILTIN_CLASSIFIER, Classification, ComplaintInput};

use super::api::{CallOutcome, Invocation, World};
use super::call::{CallKind, CallValue};
use super::error::PluginCallError;
use super::host::PluginHost;
use super::scrub::Scrubber;
use std::collections::BTreeMap;

/// What the plugin is given: the complaint with its contact details replaced
/// (and no list of them), and the scrubber that removes them from the output.
fn plugin_input(complaint: &ComplaintInput) -> (ComplaintInput, Scrubber) {
    let mut contacts = Scrubber::default();
    for contact in &complaint.contacts {
        contacts.add_contact(contact);
    }
    let sent = ComplaintInput { text: contacts.scrub(&complaint.text), contacts: Vec::new(), ..complaint.clone() };
    (sent, contacts)
}

impl PluginHost {
    /// Classify one complaint with a classifier plugin, under the plugin's
    /// limits, deadline and quarantine like every call. The plugin sees the
    /// text with `contacts` replaced; they are also scrubbed from the labels
    /// and logs returned. Blocking, like every `PluginHost` call.
    pub fn classify(
        &self,
        plugin: &str,
        inv: &Invocation,
        complaint: &ComplaintInput,
    ) -> Result<CallOutcome<Classification>, PluginCallError> {
        let (sent, contacts) = plugin_input(complaint);
        let (v, out) = self.invoke(
            plugin,
            World::Classifier,
            inv,
            &BTreeMap::new(),
            &contacts,
            CallKind::Classify(inv.clone(), sent),
        )?;
        let CallValue::Classify(mut value) = out.value else { unreachable!("classify returns a classification") };
        let mut scrub = self.grant(plugin).scrub.clone();
        scrub.extend(&contacts);
        for (k, val) in &mut value.labels {
            *k = scrub.scrub(k);
            *val = scrub.scrub(val);
        }
        Ok(CallOutcome { value, plugin: v, http: out.http, logs: out.logs })
    }
}

/// Classify one complaint with the classifier plugin `plugin` (normally
/// [`BUILTIN_CLASSIFIER`]). Why a free function: the complaint pipeline's
/// one entry point; see [`PluginHost::classify`].
pub fn classify(
    host: &PluginHost,
    plugin: &str,
    inv: &Invocation,
    complaint: &ComplaintInput,
) -> Result<CallOutcome<Classification>, PluginCallError> {
    host.classify(plugin, inv, complaint)
}

#[cfg(test)]
mod tests;
