//! The readable report: who spoke when and for how long, and the names given, as Markdown (for
//! notes and tickets) and as a self-contained HTML page (opens in any browser, prints on A4 or
//! Letter; no scripts, no remote assets).
//!
//! Both show the same three parts: the session's facts, the talk time per speaker (with the
//! name given, if any) and the timeline of turns. Names are the interviewer's text: they are
//! escaped for each format, never trusted as markup.

use super::{SessionReport, Speaker, readable_time, stream_words, timecode};

/// The report as Markdown (CommonMark tables).
pub fn markdown(report: &SessionReport) -> String {
    let mut out = format!("# {}\n\n", md(report.heading()));
    for (term, value) in facts(report) {
        out.push_str(&format!("- {term}: {}\n", md(&value)));
    }
    out.push_str("\n## Talk time\n\n");
    if report.speakers.is_empty() {
        out.push_str("No speakers were heard.\n");
    } else {
        out.push_str("| Speaker | Name given | Heard on | Talk time | Share |\n");
        out.push_str("|---|---|---|---:|---:|\n");
        for speaker in &report.speakers {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} % |\n",
                md(&speaker.label),
                speaker.name.as_deref().map_or("—".to_owned(), md),
                stream_words(&speaker.stream),
                timecode::clock(speaker.talk_ms),
                report.share_percent(speaker),
            ));
        }
    }
    out.push_str("\n## Timeline\n\n");
    if report.turns.is_empty() {
        out.push_str("No speaker turns were recorded.\n");
    } else {
        out.push_str("| From | To | Speaker |\n|---|---|---|\n");
        for turn in &report.turns {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                timecode::clock(turn.start_ms),
                timecode::clock(turn.end_ms),
                md(&turn.speaker)
            ));
        }
    }
    out
}

/// The report as a printable HTML page.
pub fn html(report: &SessionReport) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n{}</body>\n</html>\n",
        html_text(report.heading()),
        html_body(report)
    )
}

/// The page's content, without the document around it.
pub fn html_body(report: &SessionReport) -> String {
    let mut out = format!("<h1>{}</h1>\n<dl>\n", html_text(report.heading()));
    for (term, value) in facts(report) {
        out.push_str(&format!("<dt>{term}</dt><dd>{}</dd>\n", html_text(&value)));
    }
    out.push_str("</dl>\n<h2>Talk time</h2>\n");
    if report.speakers.is_empty() {
        out.push_str("<p>No speakers were heard.</p>\n");
    } else {
        out.push_str(
            "<table>\n<thead><tr><th>Speaker</th><th>Name given</th><th>Heard on</th>\
             <th class=\"num\">Talk time</th><th class=\"num\">Share</th></tr></thead>\n<tbody>\n",
        );
        for (n, speaker) in report.speakers.iter().enumerate() {
            out.push_str(&format!(
                "<tr><td><span class=\"key s{}\"></span>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{} %</td></tr>\n",
                n % COLORS,
                html_text(&speaker.label),
                speaker.name.as_deref().map_or("—".to_owned(), html_text),
                stream_words(&speaker.stream),
                timecode::clock(speaker.talk_ms),
                report.share_percent(speaker),
            ));
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("<h2>Timeline</h2>\n");
    if report.turns.is_empty() {
        out.push_str("<p>No speaker turns were recorded.</p>\n");
        return out;
    }
    out.push_str(&timeline_bar(report));
    out.push_str(
        "<table>\n<thead><tr><th>From</th><th>To</th><th>Speaker</th></tr></thead>\n<tbody>\n",
    );
    for turn in &report.turns {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            timecode::clock(turn.start_ms),
            timecode::clock(turn.end_ms),
            html_text(&turn.speaker)
        ));
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// The session's facts, in the order both formats list them.
fn facts(report: &SessionReport) -> Vec<(&'static str, String)> {
    let mut facts = vec![("Session", report.session_id.clone())];
    if let Some(started) = &report.started_at {
        facts.push(("Recorded", readable_time(started)));
    }
    facts.push(("Length", timecode::clock(report.length_ms)));
    facts.push((
        "Finalized",
        report
            .finalized_at
            .as_deref()
            .map_or("not yet".to_owned(), readable_time),
    ));
    facts
}

/// Colours the page has for speakers (`.s0` … `.s7`), reused in turn beyond that.
const COLORS: usize = 8;

/// The timeline drawn as one bar: a block per turn, placed by percent of the session's length
/// (or of the last turn's end, if the turns run past the audio).
fn timeline_bar(report: &SessionReport) -> String {
    let last_end = report.turns.iter().map(|t| t.end_ms).max().unwrap_or(0);
    let span = report.length_ms.max(last_end).max(1) as f64;
    let mut out = String::from("<div class=\"bar\" aria-hidden=\"true\">");
    for turn in &report.turns {
        let color = speaker_index(&report.speakers, &turn.cluster_id) % COLORS;
        out.push_str(&format!(
            "<span class=\"s{color}\" style=\"left:{:.2}%;width:{:.2}%\"></span>",
            turn.start_ms as f64 * 100.0 / span,
            (turn.end_ms - turn.start_ms) as f64 * 100.0 / span
        ));
    }
    out.push_str("</div>\n");
    out
}

fn speaker_index(speakers: &[Speaker], cluster_id: &str) -> usize {
    speakers
        .iter()
        .position(|s| s.cluster_id == cluster_id)
        .unwrap_or(0)
}

/// Text for HTML element content and attribute values.
pub fn html_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for a Markdown line or table cell: punctuation that could start markup is
/// backslash-escaped, and a line break becomes a space (it would end the line or the row).
pub fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '&' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The page's look: readable on screen, black on white in print, the bar's colours kept.
const STYLE: &str = "body { font: 15px/1.5 system-ui, sans-serif; color: #1d2330; margin: 2rem auto; max-width: 48rem; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.5rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; }
dt { color: #555d6e; }
dd { margin: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.3rem 0.6rem; border-bottom: 1px solid #d5d9e0; }
th.num, td.num { text-align: right; }
.key { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.5em; border-radius: 2px; }
.bar { position: relative; height: 1.4rem; background: #eef0f4; border-radius: 3px; margin: 0.5rem 0 1rem; }
.bar span { position: absolute; top: 0; bottom: 0; }
.s0 { background: #2f7ddf; } .s1 { background: #e0852c; } .s2 { background: #2f9e5b; } .s3 { background: #b255c9; }
.s4 { background: #d8455a; } .s5 { background: #1aa2a8; } .s6 { background: #8c6d3f; } .s7 { background: #6b6fd6; }
@media print {
  body { margin: 0; max-width: none; color: #000; }
  .bar, .key { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
  tr { break-inside: avoid; }
}
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tests::sample;

    #[test]
    fn markdown_lists_the_facts_talk_time_names_given_and_turns() {
        assert_eq!(
            markdown(&sample()),
            "# Interview with Ada\n\n\
             - Session: iv-1\n\
             - Recorded: 2026-11-27 09:30 UTC\n\
             - Length: 1:05\n\
             - Finalized: 2026-11-27 09:31 UTC\n\
             \n## Talk time\n\n\
             | Speaker | Name given | Heard on | Talk time | Share |\n\
             |---|---|---|---:|---:|\n\
             | Grace Hopper | Grace Hopper | microphone | 0:05 | 65 % |\n\
             | Ada \\<Lovelace\\> \\& Co | Ada \\<Lovelace\\> \\& Co | meeting audio | 0:02 | 35 % |\n\
             | Speaker 3 | — | microphone | 0:00 | 0 % |\n\
             \n## Timeline\n\n\
             | From | To | Speaker |\n|---|---|---|\n\
             | 0:00 | 0:04 | Grace Hopper |\n\
             | 0:04 | 0:07 | Ada \\<Lovelace\\> \\& Co |\n\
             | 1:01 | 1:02 | Grace Hopper |\n"
        );
    }

    #[test]
    fn markdown_escapes_what_would_break_a_table_or_start_markup() {
        assert_eq!(
            md("a|b *c* _d_ #1\nnext"),
            "a\\|b \\*c\\* \\_d\\_ \\#1 next"
        );
        assert_eq!(md(r"C:\x `y` [z]"), r"C:\\x \`y\` \[z\]");
    }

    #[test]
    fn html_escapes_names_in_text_and_attributes() {
        assert_eq!(
            html_text(r#"<b>"O'Neil" & co</b>"#),
            "&lt;b&gt;&quot;O&#39;Neil&quot; &amp; co&lt;/b&gt;"
        );
        let body = html_body(&sample());
        assert!(!body.contains("<Lovelace>"), "{body}");
        assert!(
            body.contains("<td><span class=\"key s1\"></span>Ada &lt;Lovelace&gt; &amp; Co</td>")
        );
    }

    #[test]
    fn the_html_page_shows_facts_talk_time_a_bar_and_the_turns() {
        assert_eq!(
            html_body(&sample()),
            "<h1>Interview with Ada</h1>\n<dl>\n\
             <dt>Session</dt><dd>iv-1</dd>\n\
             <dt>Recorded</dt><dd>2026-11-27 09:30 UTC</dd>\n\
             <dt>Length</dt><dd>1:05</dd>\n\
             <dt>Finalized</dt><dd>2026-11-27 09:31 UTC</dd>\n\
             </dl>\n<h2>Talk time</h2>\n\
             <table>\n<thead><tr><th>Speaker</th><th>Name given</th><th>Heard on</th>\
             <th class=\"num\">Talk time</th><th class=\"num\">Share</th></tr></thead>\n<tbody>\n\
             <tr><td><span class=\"key s0\"></span>Grace Hopper</td><td>Grace Hopper</td><td>microphone</td>\
             <td class=\"num\">0:05</td><td class=\"num\">65 %</td></tr>\n\
             <tr><td><span class=\"key s1\"></span>Ada &lt;Lovelace&gt; &amp; Co</td><td>Ada &lt;Lovelace&gt; &amp; Co</td>\
             <td>meeting audio</td><td class=\"num\">0:02</td><td class=\"num\">35 %</td></tr>\n\
             <tr><td><span class=\"key s2\"></span>Speaker 3</td><td>—</td><td>microphone</td>\
             <td class=\"num\">0:00</td><td class=\"num\">0 %</td></tr>\n\
             </tbody>\n</table>\n<h2>Timeline</h2>\n\
             <div class=\"bar\" aria-hidden=\"true\">\
             <span class=\"s0\" style=\"left:0.00%;width:6.15%\"></span>\
             <span class=\"s1\" style=\"left:6.92%;width:4.23%\"></span>\
             <span class=\"s0\" style=\"left:93.85%;width:1.54%\"></span></div>\n\
             <table>\n<thead><tr><th>From</th><th>To</th><th>Speaker</th></tr></thead>\n<tbody>\n\
             <tr><td>0:00</td><td>0:04</td><td>Grace Hopper</td></tr>\n\
             <tr><td>0:04</td><td>0:07</td><td>Ada &lt;Lovelace&gt; &amp; Co</td></tr>\n\
             <tr><td>1:01</td><td>1:02</td><td>Grace Hopper</td></tr>\n\
             </tbody>\n</table>\n"
        );
    }

    #[test]
    fn the_page_is_a_whole_printable_document_titled_after_the_session() {
        let mut report = sample();
        report.title = Some("Q&A <draft>".into());
        let page = html(&report);
        assert!(page.starts_with(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>Q&amp;A &lt;draft&gt;</title>\n<style>\n"
        ));
        assert!(page.contains("@media print"));
        assert!(page.ends_with("</tbody>\n</table>\n</body>\n</html>\n"));
        assert!(!page.contains("<script"));
    }

    #[test]
    fn a_session_not_finalized_and_without_speakers_says_so() {
        let mut report = sample();
        report.speakers.clear();
        report.turns.clear();
        report.finalized_at = None;
        report.started_at = None;
        report.title = None;
        assert_eq!(
            markdown(&report),
            "# iv-1\n\n- Session: iv-1\n- Length: 1:05\n- Finalized: not yet\n\
             \n## Talk time\n\nNo speakers were heard.\n\
             \n## Timeline\n\nNo speaker turns were recorded.\n"
        );
    }
}
