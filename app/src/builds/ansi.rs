//! Log lines with ANSI escape sequences, as runs of plain text with a style each, so that
//! pages show a build tool's colours as classes and never pass its bytes on as markup.
//!
//! Only colours and emphasis (SGR, `ESC [ … m`) are kept. Every other escape sequence and
//! control character is dropped; a carriage return keeps what follows it, as a terminal
//! would show a line redrawn over itself. 256-colour and RGB colours become the nearest of
//! the 16 standard ones, which the style sheet defines: pages allow no inline styles.

use serde::{Deserialize, Serialize};

/// How a run of text looks. Colours are 0 to 15: the 8 standard colours, then their bright
/// forms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Style {
    pub foreground: Option<u8>,
    pub background: Option<u8>,
    pub bold: bool,
    pub faint: bool,
    pub italic: bool,
    pub underline: bool,
}

impl Style {
    /// The style sheet's classes for this style, space-separated; empty for plain text.
    pub fn classes(&self) -> String {
        let mut classes = Vec::new();
        if let Some(colour) = self.foreground {
            classes.push(format!("ansi-fg{colour}"));
        }
        if let Some(colour) = self.background {
            classes.push(format!("ansi-bg{colour}"));
        }
        for (on, class) in [
            (self.bold, "ansi-bold"),
            (self.faint, "ansi-faint"),
            (self.italic, "ansi-italic"),
            (self.underline, "ansi-underline"),
        ] {
            if on {
                classes.push(class.to_owned());
            }
        }
        classes.join(" ")
    }

    /// Applies one SGR sequence's parameters.
    fn apply(&mut self, params: &[u16]) {
        let mut rest = params;
        while let Some((&code, tail)) = rest.split_first() {
            rest = tail;
            match code {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.faint = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => (self.bold, self.faint) = (false, false),
                23 => self.italic = false,
                24 => self.underline = false,
                30..=37 => self.foreground = Some((code - 30) as u8),
                39 => self.foreground = None,
                40..=47 => self.background = Some((code - 40) as u8),
                49 => self.background = None,
                90..=97 => self.foreground = Some((code - 90 + 8) as u8),
                100..=107 => self.background = Some((code - 100 + 8) as u8),
                38 | 48 => {
                    let (colour, after) = extended_colour(rest);
                    rest = after;
                    if let Some(colour) = colour {
                        if code == 38 {
                            self.foreground = Some(colour);
                        } else {
                            self.background = Some(colour);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// `5;N` or `2;R;G;B` after a 38 or 48, as one of the 16 colours; and what follows it.
fn extended_colour(params: &[u16]) -> (Option<u8>, &[u16]) {
    match params {
        [5, n, rest @ ..] => (u8::try_from(*n).ok().map(indexed), rest),
        [2, r, g, b, rest @ ..] => {
            let channel = |c: &u16| u8::try_from(*c).unwrap_or(u8::MAX);
            (Some(nearest(channel(r), channel(g), channel(b))), rest)
        }
        [_, rest @ ..] => (None, rest),
        [] => (None, params),
    }
}

/// A 256-colour palette index as one of the 16 colours.
fn indexed(n: u8) -> u8 {
    match n {
        0..=15 => n,
        16..=231 => {
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            let n = n - 16;
            nearest(level(n / 36), level((n / 6) % 6), level(n % 6))
        }
        _ => {
            let grey = 8 + (n - 232) * 10;
            nearest(grey, grey, grey)
        }
    }
}

/// The 16 colours as a terminal of the xterm kind shows them.
const PALETTE: [(u8, u8, u8); 16] = [
    (0, 0, 0),
    (205, 0, 0),
    (0, 205, 0),
    (205, 205, 0),
    (0, 0, 238),
    (205, 0, 205),
    (0, 205, 205),
    (229, 229, 229),
    (127, 127, 127),
    (255, 0, 0),
    (0, 255, 0),
    (255, 255, 0),
    (92, 92, 255),
    (255, 0, 255),
    (0, 255, 255),
    (255, 255, 255),
];

fn nearest(r: u8, g: u8, b: u8) -> u8 {
    let distance = |&(pr, pg, pb): &(u8, u8, u8)| {
        let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).pow(2);
        d(r, pr) + d(g, pg) + d(b, pb)
    };
    PALETTE
        .iter()
        .enumerate()
        .min_by_key(|(_, colour)| distance(colour))
        .map_or(7, |(n, _)| n as u8)
}

/// A run of text in one style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub text: String,
    pub style: Style,
}

/// The most parameters one SGR sequence is read for; the rest are ignored.
const MAX_PARAMS: usize = 32;

/// The most bytes of one escape sequence that are read; the rest are skipped.
const MAX_SEQUENCE_BYTES: usize = 256;

/// `line` as runs of text, each with the style it is shown in. Runs are never empty, and
/// neighbours differ in style.
pub fn runs(line: &str) -> Vec<Run> {
    let line = line.trim_end_matches('\r');
    let line = line.rfind('\r').map_or(line, |at| &line[at + 1..]);
    let mut runs: Vec<Run> = Vec::new();
    let mut style = Style::default();
    let mut text = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            if c == '\t' || !c.is_control() {
                text.push(c);
            }
            continue;
        }
        match chars.next() {
            // CSI: parameter and intermediate bytes, then one final byte.
            Some('[') => {
                let mut body = String::new();
                let mut last = None;
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        last = Some(c);
                        break;
                    }
                    if body.len() < MAX_SEQUENCE_BYTES {
                        body.push(c);
                    }
                }
                if last == Some('m') {
                    let params: Vec<u16> = body
                        .split([';', ':'])
                        .take(MAX_PARAMS)
                        .map(|p| p.parse::<u16>().unwrap_or(0))
                        .collect();
                    let mut next = style;
                    next.apply(&params);
                    if next != style {
                        push(&mut runs, std::mem::take(&mut text), style);
                        style = next;
                    }
                }
            }
            // OSC (titles, hyperlinks): up to BEL or ESC \.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    push(&mut runs, text, style);
    runs
}

/// `line` as the plain text [`runs`] shows, without its styles: what a reader of the line
/// sees.
pub fn plain(line: &str) -> String {
    runs(line).into_iter().map(|run| run.text).collect()
}

fn push(runs: &mut Vec<Run>, text: String, style: Style) {
    if text.is_empty() {
        return;
    }
    match runs.last_mut() {
        Some(last) if last.style == style => last.text.push_str(&text),
        _ => runs.push(Run { text, style }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str) -> Run {
        Run {
            text: text.into(),
            style: Style::default(),
        }
    }

    #[test]
    fn plain_text_is_one_run() {
        assert_eq!(
            runs("NOTE: Executing Tasks"),
            vec![plain("NOTE: Executing Tasks")]
        );
        assert_eq!(runs(""), vec![]);
    }

    #[test]
    fn colours_and_emphasis_become_classes() {
        let found = runs("\u{1b}[1;31mERROR:\u{1b}[0m busybox \u{1b}[93;44mwarn\u{1b}[39mx");
        let texts: Vec<_> = found.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["ERROR:", " busybox ", "warn", "x"]);
        assert_eq!(found[0].style.classes(), "ansi-fg1 ansi-bold");
        assert_eq!(found[1].style, Style::default());
        assert_eq!(found[2].style.classes(), "ansi-fg11 ansi-bg4");
        assert_eq!(found[3].style.classes(), "ansi-bg4");
        // `ESC [ m`, without parameters, resets as `ESC [ 0 m` does.
        assert_eq!(runs("\u{1b}[1;32mA\u{1b}[mB")[1], plain("B"));
    }

    #[test]
    fn extended_colours_become_the_nearest_standard_one() {
        assert_eq!(runs("\u{1b}[38;5;196mr")[0].style.foreground, Some(9));
        assert_eq!(runs("\u{1b}[38;5;2mg")[0].style.foreground, Some(2));
        assert_eq!(runs("\u{1b}[48;5;231mw")[0].style.background, Some(15));
        assert_eq!(runs("\u{1b}[38;2;0;0;250mb")[0].style.foreground, Some(4));
        assert_eq!(
            runs("\u{1b}[38:2:250:250:250mw")[0].style.foreground,
            Some(15)
        );
        // Cut short or out of range: nothing breaks, what follows still applies.
        assert_eq!(runs("\u{1b}[38;5mx")[0].style, Style::default());
        assert_eq!(
            runs("\u{1b}[38;2;999;0;0;1mx")[0].style.classes(),
            "ansi-fg9 ansi-bold"
        );
    }

    #[test]
    fn other_sequences_and_controls_are_dropped() {
        assert_eq!(
            runs("a\u{1b}[2Kb\u{1b}]0;title\u{7}c\u{1b}]8;;http://x\u{1b}\\d\u{0}\u{8}e\tf"),
            vec![plain("abcde\tf")]
        );
        assert_eq!(runs("\u{1b}[31"), vec![]);
        assert_eq!(runs("x\u{1b}"), vec![plain("x")]);
    }

    #[test]
    fn a_carriage_return_keeps_the_redrawn_line() {
        assert_eq!(runs("10%\r50%\r100%"), vec![plain("100%")]);
        assert_eq!(runs("done\r"), vec![plain("done")]);
        assert_eq!(runs("a\rb\r\r"), vec![plain("b")]);
        assert_eq!(
            runs("\u{1b}[32mok\r"),
            vec![Run {
                text: "ok".into(),
                style: Style {
                    foreground: Some(2),
                    ..Style::default()
                }
            }]
        );
    }

    #[test]
    fn markup_stays_text() {
        let found = runs("<script>alert(1)</script>\u{1b}[31m<b>&amp;");
        assert_eq!(found[0].text, "<script>alert(1)</script>");
        assert_eq!(found[1].text, "<b>&amp;");
        // Classes come from numbers only, never from the line's text.
        assert_eq!(runs("\u{1b}[<\"=\">;31m!")[0].style.classes(), "ansi-fg1");
    }

    #[test]
    fn many_parameters_are_read_up_to_the_limit() {
        let line = format!("\u{1b}[{}1mx", "0;".repeat(MAX_PARAMS * 4));
        assert_eq!(runs(&line)[0].style, Style::default());
        let line = format!("\u{1b}[{}1mx", "0;".repeat(MAX_PARAMS - 2));
        assert!(runs(&line)[0].style.bold);
    }
}
