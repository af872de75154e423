//! The timeline as subtitles: one cue per turn, its text the speaker's label, so a player
//! shows who is speaking under the session's audio.

use super::SessionReport;
use super::timecode;

/// SubRip: numbered cues from 1, `start --> end`, the label, a blank line. SRT has no
/// escaping; a line break inside a name would end the cue early, so it becomes a space.
pub fn srt(report: &SessionReport) -> String {
    let mut out = String::new();
    for (n, turn) in report.turns.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            n + 1,
            timecode::srt(turn.start_ms),
            timecode::srt(turn.end_ms),
            one_line(&turn.speaker)
        ));
    }
    out
}

/// WebVTT: the `WEBVTT` header, then one cue per turn with the speaker as a voice span
/// (`<v Name>Name`), which players can style per speaker. `&`, `<` and `>` are escaped, as
/// the format requires in cue text.
pub fn vtt(report: &SessionReport) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for turn in &report.turns {
        let name = escape_cue(&one_line(&turn.speaker));
        out.push_str(&format!(
            "{} --> {}\n<v {name}>{name}\n\n",
            timecode::vtt(turn.start_ms),
            timecode::vtt(turn.end_ms),
        ));
    }
    out
}

fn one_line(text: &str) -> String {
    text.split(['\r', '\n']).collect::<Vec<_>>().join(" ")
}

fn escape_cue(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tests::sample;

    #[test]
    fn srt_numbers_each_turn_with_comma_milliseconds() {
        assert_eq!(
            srt(&sample()),
            "1\n00:00:00,000 --> 00:00:04,000\nGrace Hopper\n\n\
             2\n00:00:04,500 --> 00:00:07,250\nAda <Lovelace> & Co\n\n\
             3\n00:01:01,000 --> 00:01:02,001\nGrace Hopper\n\n"
        );
    }

    #[test]
    fn vtt_has_its_header_voice_spans_and_escaped_names() {
        assert_eq!(
            vtt(&sample()),
            "WEBVTT\n\n\
             00:00:00.000 --> 00:00:04.000\n<v Grace Hopper>Grace Hopper\n\n\
             00:00:04.500 --> 00:00:07.250\n<v Ada &lt;Lovelace&gt; &amp; Co>Ada &lt;Lovelace&gt; &amp; Co\n\n\
             00:01:01.000 --> 00:01:02.001\n<v Grace Hopper>Grace Hopper\n\n"
        );
    }

    #[test]
    fn a_name_with_a_line_break_stays_on_its_cue_line() {
        let mut report = sample();
        report.turns.truncate(1);
        report.turns[0].speaker = "Grace\nHopper".into();
        assert_eq!(
            srt(&report),
            "1\n00:00:00,000 --> 00:00:04,000\nGrace Hopper\n\n"
        );
    }

    #[test]
    fn a_session_without_turns_gives_an_empty_srt_and_a_bare_vtt() {
        let mut report = sample();
        report.turns.clear();
        assert_eq!(srt(&report), "");
        assert_eq!(vtt(&report), "WEBVTT\n\n");
    }
}
