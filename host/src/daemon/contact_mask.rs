//! Contact details in free text: e-mail addresses and phone numbers are
//! replaced by a marker before the text is journaled or logged. PagerDuty
//! events and customer complaints both go through here.
//!
//! A phone number counts whether written in one piece (`+15550100`) or with
//! spaces (`+1 555 0100`). In complaint text (`loose`), where customers write
//! their numbers without a country code, any run of 8 to 15 digits (spaces,
//! dashes, dots and brackets allowed between them) is masked too, except a
//! date written `YYYY-MM-DD`: an order number of that length is masked with them.

/// What a contact detail is replaced with.
pub(crate) const CONTACT_WITHHELD: &str = "[contact detail withheld]";

fn trim(word: &str) -> &str {
    word.trim_matches(|c: char| matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | '"' | '\'' | '.' | ':' | '!' | '?'))
}

/// Whether a word is an email address or a phone number: such words are
/// withheld from the journal wherever they appear in an event.
pub(crate) fn is_contact(word: &str) -> bool {
    let w = trim(word);
    let w = w.strip_prefix("mailto:").or_else(|| w.strip_prefix("tel:")).unwrap_or(w);
    if let Some((local, domain)) = w.split_once('@') {
        return !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.');
    }
    let digits = w.chars().filter(char::is_ascii_digit).count();
    let phone_chars = w.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | '(' | ')' | ' '));
    phone_chars && w.starts_with('+') && (7..=15).contains(&digits)
}

/// A piece of a phone number: digits with the separators people write.
fn phoneish(word: &str) -> bool {
    let w = trim(word);
    w.chars().any(|c| c.is_ascii_digit())
        && w.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | '(' | ')'))
        || w == "+"
}

fn digits(word: &str) -> usize {
    word.chars().filter(char::is_ascii_digit).count()
}

/// `2026-11-30` and the like: a date, not a phone number.
fn is_date(word: &str) -> bool {
    let parts: Vec<&str> = trim(word).split(['-', '/']).collect();
    parts.len() == 3
        && parts[0].len() == 4
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// `text` with every e-mail address and phone number replaced by
/// [`CONTACT_WITHHELD`]; `loose` also masks numbers without a leading `+`.
pub(crate) fn mask(text: &str, loose: bool) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let mut out: Vec<&str> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if is_contact(w) {
            out.push(CONTACT_WITHHELD);
            i += 1;
            continue;
        }
        if !phoneish(w) {
            out.push(w);
            i += 1;
            continue;
        }
        // The longest run of number pieces that still reads as one phone number.
        let (mut j, mut n) = (i, 0);
        while j < words.len() && phoneish(words[j]) && n + digits(words[j]) <= 15 {
            n += digits(words[j]);
            j += 1;
        }
        let plus = trim(w).starts_with('+');
        let phone = (7..=15).contains(&n) && (plus || (loose && n >= 8 && !(j == i + 1 && is_date(w))));
        if phone {
            out.push(CONTACT_WITHHELD);
        } else {
            out.extend(&words[i..j.max(i + 1)]);
        }
        i = j.max(i + 1);
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_written_with_spaces_are_masked() {
        let m = mask("call +1 555 0100 or mail bob@example.com, thanks", false);
        assert_eq!(m, format!("call {CONTACT_WITHHELD} or mail {CONTACT_WITHHELD} thanks"));
        assert_eq!(mask("v1.2.3 at 10.0.0.1 took 1500 ms", false), "v1.2.3 at 10.0.0.1 took 1500 ms");
        // Strict mode keeps numbers without a country code; complaint text masks them.
        assert_eq!(mask("order 138 0013 8000", false), "order 138 0013 8000");
        assert_eq!(mask("我的电话 138 0013 8000 请回电", true), format!("我的电话 {CONTACT_WITHHELD} 请回电"));
        assert_eq!(mask("since 2026-11-30 I wait, 3 times", true), "since 2026-11-30 I wait, 3 times");
        assert_eq!(mask("ring (020) 7946-0958", true), format!("ring {CONTACT_WITHHELD}"));
    }
}
