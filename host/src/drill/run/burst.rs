//! A complaint burst: drill-mode complaints taken through the same path as
//! live ones (classification, the appeasement plugin's first response, which
//! the drill executor captures, and the first-response deadline timer on the
//! drill's clock), each also attached to the drill incident as a duplicate
//! of its alert.
//!
//! Who complains: the configured customer source's customers in turn, when
//! it has any (by id only; the drill never reaches them, and their contact
//! details never reach plugins or the journal); otherwise synthetic drill
//! customers `drill-cust-N`, who have no contact details at all.

use super::Runner;
use crate::complaints::{Incoming, record};
use crate::config::customers::{Contact, Customer};
use crate::incident::EngineError;
use crate::incident::complaint::{Complaint, Composer};
use crate::playbook::types::Channel;
use std::collections::BTreeMap;

/// The customer who sends the `n`th (1-based) complaint of a burst.
pub(super) fn burst_customer(customers: &[Customer], n: u32) -> Customer {
    match customers.len() {
        0 => Customer {
            id: format!("drill-cust-{n}"),
            segment: "affected".into(),
            tier: "standard".into(),
            locale: "en".into(),
            channel: Channel::Sms,
            contact: Contact::default(),
        },
        len => customers[(n as usize - 1) % len].clone(),
    }
}

/// A drill complaint's text: the playbook's summary, which is what its customers would complain about.
fn text(summary: &str, n: u32, count: u32, max: usize) -> String {
    format!("{summary} (drill complaint {n} of {count})").chars().take(max.max(1)).collect()
}

impl Runner<'_> {
    /// Records `count` drill complaints on `channel` (each customer's own
    /// channel when none is given or it is unknown) and attaches each to the
    /// drill incident; says what came of it for the controller log.
    pub(super) fn complaint_burst(&mut self, count: u32, channel: Option<&str>) -> Result<String, EngineError> {
        let incident = self.incident.clone().unwrap_or_default();
        let fixed: Option<Channel> = channel.and_then(|c| c.parse().ok());
        let max = self.g.config.complaints.max_text;
        let mut labels = self.alert.as_ref().map(|a| a.labels.clone()).unwrap_or_default();
        labels.insert("drill_incident".into(), incident.clone());
        let mut recorded: Vec<Complaint> = Vec::new();
        let mut attached = 0;
        let mut not_attached: Option<String> = None;
        for n in 1..=count {
            let who = burst_customer(&self.engine.generation().customers, n);
            let channel = fixed.unwrap_or(who.channel);
            let incoming = Incoming {
                customer: &who,
                channel,
                category: None,
                text: text(&self.pb.summary, n, count, max),
                labels: labels.clone(),
                source: "drill".into(),
                intake_key: None,
            };
            // Drill texts and plugin inputs hold no contact details: nothing to mask.
            let c = record(self.engine, self.plugins.as_deref(), incoming, str::to_string)?.complaint;
            if not_attached.is_none() {
                let f = BTreeMap::from([(
                    "complaint".to_string(),
                    format!("customer complaint {n}/{count} by {channel} ({})", c.id),
                )]);
                match self.duplicate("complaint", f, "complaint") {
                    Ok(true) => attached += 1,
                    Ok(false) => {}
                    Err(EngineError::Internal(e)) => return Err(EngineError::Internal(e)),
                    Err(e) => not_attached = Some(e.to_string()),
                }
            }
            recorded.push(c);
        }
        let by_plugin = recorded.iter().filter(|c| matches!(c.composer, Some(Composer::Plugin { .. }))).count();
        let ids = match (recorded.first(), recorded.last()) {
            (Some(a), Some(b)) if a.id != b.id => format!(" ({}..{})", a.id, b.id),
            (Some(a), _) => format!(" ({})", a.id),
            _ => String::new(),
        };
        let complaints = format!(
            "{} drill complaints recorded{ids}, {by_plugin} first responses composed by the appeasement plugin and {} by the plain template",
            recorded.len(),
            recorded.len() - by_plugin
        );
        Ok(match not_attached {
            None => format!("{attached} of {count} complaints attached to {incident}; {complaints}"),
            Some(e) => format!("{complaints}; not attached to {incident}: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_customers_complain_in_turn_else_synthetic_ones_without_contacts() {
        let c = burst_customer(&[], 3);
        assert_eq!(c.id, "drill-cust-3");
        assert!(c.contact.phone.is_empty() && c.contact.email.is_empty());
        let mut a = burst_customer(&[], 1);
        a.id = "C-1".into();
        let mut b = a.clone();
        b.id = "C-2".into();
        let list = [a, b];
        let ids: Vec<String> = (1..=3).map(|n| burst_customer(&list, n).id).collect();
        assert_eq!(ids, ["C-1", "C-2", "C-1"]);
    }

    #[test]
    fn texts_name_the_complaint_and_respect_the_limit() {
        assert_eq!(text("Kettles leak.", 2, 5, 2000), "Kettles leak. (drill complaint 2 of 5)");
        assert_eq!(text("Kettles leak.", 2, 5, 7), "Kettles");
    }
}
