//! Names for voices: a person introducing themselves in the transcript ("I'm Ada", "my name is
//! Ada Lovelace", "this is Ada speaking"), checked against the meeting's roster.
//!
//! Only a self-introduction binds a name automatically: a name merely mentioned ("thanks,
//! Grace") is usually someone else's.

/// Phrases after which a speaker says their own name.
const INTRODUCTIONS: &[&str] = &[
    "my name is",
    "my name's",
    "i am",
    "i'm",
    "this is",
    "it's",
    "call me",
    "here is",
    "here's",
];

/// The roster name a speaker introduces themselves with in `text`, if any. A roster entry
/// matches by its full name or by its first name; without a roster nothing is bound (a name
/// the interviewer did not expect is better confirmed by hand).
pub fn introduced_name<'a>(text: &str, roster: &'a [String]) -> Option<&'a str> {
    let words = words(text);
    for (i, _) in words.iter().enumerate() {
        for phrase in INTRODUCTIONS {
            let phrase: Vec<&str> = phrase.split(' ').collect();
            if words.len() < i + phrase.len() || words[i..i + phrase.len()] != phrase[..] {
                continue;
            }
            let after = &words[i + phrase.len()..];
            if let Some(name) = roster.iter().find(|name| names_match(after, name)) {
                return Some(name.as_str());
            }
        }
    }
    None
}

/// Whether `after` starts with `name` in full or with its first word.
fn names_match(after: &[String], name: &str) -> bool {
    let name = words(name);
    if name.is_empty() {
        return false;
    }
    let full = after.len() >= name.len() && after[..name.len()] == name[..];
    full || after.first() == name.first()
}

/// Lower-case words, with apostrophes kept inside words ("i'm", "name's").
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '\u{2019}'))
        .filter(|w| !w.is_empty())
        .map(|w| w.replace('\u{2019}', "'"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roster() -> Vec<String> {
        vec!["Ada Lovelace".into(), "Grace Hopper".into()]
    }

    #[test]
    fn a_self_introduction_names_the_roster_person() {
        for text in [
            "Hello, I'm Ada, nice to meet you",
            "hi everyone my name is Grace Hopper",
            "This is ada speaking.",
            "Hi, it’s Grace here",
        ] {
            assert!(introduced_name(text, &roster()).is_some(), "{text}");
        }
        assert_eq!(
            introduced_name("my name is Grace", &roster()),
            Some("Grace Hopper")
        );
    }

    #[test]
    fn a_mentioned_name_or_an_unknown_one_binds_nothing() {
        assert_eq!(
            introduced_name("thanks Grace, over to you", &roster()),
            None
        );
        assert_eq!(introduced_name("I'm Linus", &roster()), None);
        assert_eq!(introduced_name("I'm Ada", &[]), None);
        assert_eq!(introduced_name("", &roster()), None);
    }
}
