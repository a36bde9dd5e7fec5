//! Removes secret values and customer contact details from text that leaves a
//! plugin call (error messages, log lines, captured stdout/stderr, HTTP
//! records) before it is logged or journaled.
//!
//! Rule: every string a plugin call hands back passes through one
//! [`Scrubber`] holding every secret resolved for that call and every contact
//! detail the call was given. A value is removed in the encodings a plugin
//! or an HTTP library is likely to produce: as written, URL-encoded (either
//! hex case, `+` or `%20` for spaces), JSON-escaped (also with `\/`), and,
//! for phone numbers, with any separators, with or without `+`, the country
//! code or a leading trunk `0`. Matching ignores ASCII case, so a value is
//! also found when a library upper- or lower-cases it.

/// What replaces a scrubbed value.
pub(crate) const REDACTED: &str = "<redacted>";

/// Fewest digits a phone number must have to be matched in its separated or
/// shortened forms (shorter digit runs are too common in ordinary text).
const MIN_PHONE_DIGITS: usize = 7;

/// The values to remove from one call's output. Why one type: the egress
/// hook, the log sink and the daemon's journal writer must all remove the
/// same values the same way.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scrubber {
    /// Lower-cased literal forms, longest first (so a longer form wins).
    needles: Vec<String>,
    /// Digits of phone numbers (country code included if it was written).
    phones: Vec<String>,
}

impl Scrubber {
    /// Remember a secret value in all its encodings.
    pub(crate) fn add_secret(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        for form in encodings(value) {
            self.push_needle(form);
        }
    }

    /// Remember a customer contact detail (address, e-mail or phone number):
    /// its literal encodings and, if it is a phone number, its digit forms.
    pub(crate) fn add_contact(&mut self, value: &str) {
        let value = value.trim();
        self.add_secret(value);
        if let Some(digits) = phone_digits(value)
            && !self.phones.contains(&digits)
        {
            self.phones.push(digits);
        }
    }

    /// Add everything another scrubber removes.
    pub(crate) fn extend(&mut self, other: &Scrubber) {
        for n in &other.needles {
            self.push_needle(n.clone());
        }
        for p in &other.phones {
            if !self.phones.contains(p) {
                self.phones.push(p.clone());
            }
        }
    }

    /// True when there is nothing to remove.
    pub(crate) fn is_empty(&self) -> bool {
        self.needles.is_empty() && self.phones.is_empty()
    }

    /// `text` with every known value replaced by `<redacted>`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        if self.is_empty() || text.is_empty() {
            return text.to_string();
        }
        let mut out = text.to_string();
        for n in &self.needles {
            out = replace_ignore_ascii_case(&out, n);
        }
        for p in &self.phones {
            out = scrub_phone(&out, p);
        }
        out
    }

    fn push_needle(&mut self, form: String) {
        let form = form.to_ascii_lowercase();
        if form.is_empty() || form == REDACTED || self.needles.contains(&form) {
            return;
        }
        self.needles.push(form);
        self.needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }
}

/// The literal forms a value may take in plugin output.
fn encodings(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_string()];
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json.trim_matches('"').to_string();
    forms.push(json.replace('/', "\\/"));
    forms.push(json);
    forms.push(percent_encode(value, false));
    forms.push(percent_encode(value, true));
    forms.sort();
    forms.dedup();
    forms
}

/// Percent-encodes every byte outside the URL-unreserved set; `form` writes
/// spaces as `+` (HTML form encoding).
fn percent_encode(value: &str, form: bool) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b' ' if form => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn replace_ignore_ascii_case(text: &str, needle_lower: &str) -> String {
    // ASCII lower-casing keeps byte offsets, so positions found in the
    // lowered copy are valid in the original.
    let lowered = text.to_ascii_lowercase();
    if !lowered.contains(needle_lower) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in lowered.match_indices(needle_lower) {
        if i < last {
            continue;
        }
        out.push_str(&text[last..i]);
        out.push_str(REDACTED);
        last = i + needle_lower.len();
    }
    out.push_str(&text[last..]);
    out
}

/// The digits of `value` if it looks like a phone number: only digits, `+`
/// and separators, with at least [`MIN_PHONE_DIGITS`] digits.
fn phone_digits(value: &str) -> Option<String> {
    let ok = value.chars().all(|c| c.is_ascii_digit() || "+ -.()/".contains(c));
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    (ok && digits.len() >= MIN_PHONE_DIGITS).then_some(digits)
}

/// Length of a separator allowed inside a written phone number at the start
/// of `rest` (plain or URL-encoded), or 0.
fn separator_len(rest: &[u8]) -> usize {
    match rest.first() {
        Some(b' ' | b'-' | b'.' | b'(' | b')' | b'/' | b'+') => 1,
        Some(b'%') if rest.len() >= 3 => {
            let code = [rest[1].to_ascii_uppercase(), rest[2].to_ascii_uppercase()];
            if matches!(&code, b"20" | b"2D" | b"2E" | b"28" | b"29" | b"2F" | b"2B") { 3 } else { 0 }
        }
        _ => 0,
    }
}

/// Length of what may open a written phone number before its first digit
/// (`+`, `(`, plain or URL-encoded), or 0.
fn lead_len(rest: &[u8]) -> usize {
    match rest.first() {
        Some(b'+' | b'(') => 1,
        Some(b'%') if rest.len() >= 3 => {
            let code = [rest[1].to_ascii_uppercase(), rest[2].to_ascii_uppercase()];
            if matches!(&code, b"2B" | b"28") { 3 } else { 0 }
        }
        _ => 0,
    }
}

/// Replaces every digit run (digits joined by separators, optionally led by
/// `+`) that contains the phone's national part: its digits without up to
/// three leading country-code digits, but never fewer than
/// [`MIN_PHONE_DIGITS`].
fn scrub_phone(text: &str, phone: &str) -> String {
    let keep = phone.len().saturating_sub(3).max(MIN_PHONE_DIGITS).min(phone.len());
    let core = &phone[phone.len() - keep..];
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let lead = lead_len(&bytes[i..]);
        let starts = bytes[i].is_ascii_digit() || (lead > 0 && bytes.get(i + lead).is_some_and(u8::is_ascii_digit));
        let after_digit = i > 0 && bytes[i - 1].is_ascii_digit();
        if !starts || after_digit {
            i += 1;
            continue;
        }
        // Collect one run.
        let start = i;
        let mut j = i;
        let mut end = i;
        let mut digits = String::new();
        while j < bytes.len() {
            if bytes[j].is_ascii_digit() {
                digits.push(bytes[j] as char);
                j += 1;
                end = j;
            } else {
                let s = separator_len(&bytes[j..]);
                if s == 0 {
                    break;
                }
                j += s;
            }
        }
        if digits.contains(core) {
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
            copied = end;
        }
        i = end.max(start + 1);
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_secret(v: &str) -> Scrubber {
        let mut s = Scrubber::default();
        s.add_secret(v);
        s
    }

    fn with_contact(v: &str) -> Scrubber {
        let mut s = Scrubber::default();
        s.add_contact(v);
        s
    }

    #[test]
    fn exact_secret_is_removed() {
        let s = with_secret("XXXXSECRET");
        assert_eq!(s.scrub("POST /services/T/B/XXXXSECRET failed"), "POST /services/T/B/<redacted> failed");
        assert_eq!(s.scrub("xxxxsecret"), "<redacted>", "case-insensitive");
        assert_eq!(s.scrub("nothing here"), "nothing here");
    }

    #[test]
    fn url_encoded_secret_is_removed_in_either_hex_case_and_form_encoding() {
        let s = with_secret("https://hooks.slack.com/services/T0/B0/a b");
        let enc = "url=https%3A%2F%2Fhooks.slack.com%2Fservices%2FT0%2FB0%2Fa%20b";
        assert_eq!(s.scrub(enc), "url=<redacted>");
        assert_eq!(s.scrub(&enc.to_ascii_lowercase()), "url=<redacted>");
        assert_eq!(s.scrub("q=https%3A%2F%2Fhooks.slack.com%2Fservices%2FT0%2FB0%2Fa+b&x=1"), "q=<redacted>&x=1");
    }

    #[test]
    fn json_escaped_secret_is_removed() {
        let s = with_secret("pa\"ss/wo\\rd");
        let json = serde_json::json!({ "token": "pa\"ss/wo\\rd" }).to_string();
        assert_eq!(json, r#"{"token":"pa\"ss/wo\\rd"}"#);
        assert_eq!(s.scrub(&json), r#"{"token":"<redacted>"}"#);
        assert_eq!(s.scrub(r#"{"token":"pa\"ss\/wo\\rd"}"#), r#"{"token":"<redacted>"}"#);
    }

    #[test]
    fn email_is_removed_exact_encoded_and_in_any_case() {
        let s = with_contact("Ada.Lovelace+ops@example.com");
        assert_eq!(s.scrub("to Ada.Lovelace+ops@example.com"), "to <redacted>");
        assert_eq!(s.scrub("to=ada.lovelace%2Bops%40example.com"), "to=<redacted>");
        assert_eq!(s.scrub("to=ADA.LOVELACE+OPS@EXAMPLE.COM"), "to=<redacted>");
    }

    #[test]
    fn phone_is_removed_with_or_without_separators_plus_and_country_code() {
        let s = with_contact("+1 555 123 4567");
        for text in [
            "sms to +1 555 123 4567 ok",
            "sms to +15551234567 ok",
            "sms to 15551234567 ok",
            "sms to 555-123-4567 ok",
            "sms to (555) 123.4567 ok",
            "sms to 5551234567 ok",
            "sms to %2B1%20555%20123%204567 ok",
            "sms to 0015551234567 ok",
        ] {
            assert_eq!(s.scrub(text), "sms to <redacted> ok", "{text}");
        }
        // A contact written without the country code matches the full form too.
        let s = with_contact("555-123-4567");
        assert_eq!(s.scrub("{\"to\":\"+15551234567\"}"), "{\"to\":\"<redacted>\"}");
        // Other numbers stay.
        assert_eq!(s.scrub("status 200 after 1234 ms, id 5550000"), "status 200 after 1234 ms, id 5550000");
    }

    #[test]
    fn empty_scrubber_and_extend() {
        let mut s = Scrubber::default();
        assert!(s.is_empty());
        assert_eq!(s.scrub("a b"), "a b");
        s.extend(&with_secret("k1"));
        s.extend(&with_contact("+44 20 7946 0958"));
        assert_eq!(s.scrub("k1 called 020 7946 0958"), "<redacted> called <redacted>");
    }
}
