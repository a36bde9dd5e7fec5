//! A playbook as readable text, phase by phase: what `crisis playbook show`
//! prints and what the web console shows for each loaded playbook.

use super::Playbook;
use super::spec::DrillClock;

/// A readable summary of a playbook, phase by phase.
pub(crate) fn describe(p: &Playbook) -> String {
    use std::fmt::Write;
    let d = |d: std::time::Duration| humantime::format_duration(d).to_string();
    let mut s = String::new();
    let _ = writeln!(s, "{} — {}", p.id, p.name);
    let _ = writeln!(
        s,
        "  category {}, default severity {}, file {}, hash {}",
        p.category,
        p.severity,
        p.path.display(),
        &p.hash[..12]
    );
    if !p.summary.is_empty() {
        let _ = writeln!(s, "  {}", p.summary);
    }
    if let Some(t) = &p.trigger {
        let m: Vec<String> = t.matches.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "trigger: match {} dedup {}", m.join(","), t.dedup_key.as_deref().unwrap_or("-"));
    }
    let req: Vec<&str> = p.report.require.iter().map(|f| f.as_str()).collect();
    let _ = writeln!(
        s,
        "1 report:   within {}, require [{}], notify [{}]",
        d(p.report.within),
        req.join(", "),
        p.report.notify.join(", ")
    );
    let _ = writeln!(
        s,
        "2 activate: {}channels [{}]{}",
        p.activate.approval.as_ref().map(|a| format!("approval by {a}, ")).unwrap_or_default(),
        p.activate.channels.join(", "),
        p.activate.within.map(|w| format!(", within {}", d(w))).unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "3 assign:   commander {}{}{}{}",
        p.assign.commander,
        p.assign.liaison.as_ref().map(|l| format!(", liaison {l}")).unwrap_or_default(),
        p.assign.scribe.as_ref().map(|l| format!(", scribe {l}")).unwrap_or_default(),
        p.assign.ack_within.map(|w| format!(", ack within {}", d(w))).unwrap_or_default()
    );
    for e in &p.assign.escalate {
        let _ = writeln!(s, "             escalate after {} to {} (x{})", d(e.after), e.to, e.repeat);
    }
    let _ = writeln!(s, "4 act:");
    for st in &p.act {
        let _ = writeln!(
            s,
            "   - {} [{}]{}{}{}",
            st.id,
            st.kind,
            st.within.map(|w| format!(" within {}", d(w))).unwrap_or_default(),
            if st.after.is_empty() { String::new() } else { format!(" after {}", st.after.join(",")) },
            st.when.as_ref().map(|w| format!(" when {w}")).unwrap_or_default()
        );
        for t in &st.tasks {
            let _ = writeln!(s, "       · {t}");
        }
    }
    let _ = writeln!(
        s,
        "5 track:    {}{}notify [{}]",
        p.track.update_every.map(|w| format!("update every {}, ", d(w))).unwrap_or_default(),
        p.track.stale_after.map(|w| format!("stale after {}, ", d(w))).unwrap_or_default(),
        p.track.notify.join(", ")
    );
    let req: Vec<&str> = p.outcome.require.iter().map(|f| f.as_str()).collect();
    let _ = writeln!(
        s,
        "6 outcome:  require [{}], notify [{}]{}",
        req.join(", "),
        p.outcome.notify.join(", "),
        p.outcome.within.map(|w| format!(", within {}", d(w))).unwrap_or_default()
    );
    if let Some(dr) = &p.drill {
        // The spelling a playbook uses for the clock, not the Rust enum.
        let clock = match dr.clock {
            DrillClock::Real => "real".to_string(),
            DrillClock::Virtual => "virtual".to_string(),
            DrillClock::Speed(n) => format!("x{n}"),
        };
        let _ = writeln!(
            s,
            "drill: schedule {} ({}), clock {clock}",
            dr.schedule.as_deref().unwrap_or("-"),
            dr.timezone.as_deref().unwrap_or("UTC")
        );
    }
    s
}
