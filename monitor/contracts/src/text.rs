//! Text from checkpoints, made safe and measured for a terminal.
//!
//! Tensor names and `htsr.*` metadata come from files that anyone may have written (a model from a hub, a
//! colleague's run). Printed raw, a name holding `ESC [ 2 J` clears the user's screen, an OSC sequence sets the
//! window title or (OSC 52) the clipboard, and a right-to-left override makes `gpj.exe` read as `exe.jpg`. Every
//! human-facing text output renders such strings with [`terminal_safe`] first: control characters become visible
//! escapes (`\x1b`, `\n`, `\u{202e}`), as ripgrep and `ls` show them, and everything else is left as it is, so a
//! name in Japanese stays readable. Data outputs (CSV, JSON to a file or a pipe) keep the bytes as they are.
//!
//! Widths are display columns ([`width`]): a CJK character or an emoji takes two, a combining mark none. Clipping
//! ([`clip_end`], [`clip_front`]) and padding ([`pad_end`]) count columns and never split a character.

use std::borrow::Cow;
use std::fmt::Write;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Whether `c` must not reach a terminal as it is: C0 and C1 control characters and DEL (every escape sequence
/// starts with one), the bidirectional controls (they reorder the text after them), and the line and paragraph
/// separators (some terminals break lines on them).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
                | '\u{2028}' | '\u{2029}'
        )
}

fn escape_into(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `s` with every unsafe character escaped except those in `keep`: for text that mixes untrusted strings with
/// control characters the tool wrote itself (a log line's own colour sequences, whose formatter escaped the
/// escape characters of the names it quotes, keeps ESC).
pub fn escape_unsafe_except<'a>(s: &'a str, keep: &[char]) -> Cow<'a, str> {
    escaped(s, |c| keep.contains(&c))
}

fn escaped(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) && !keep(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` as it may be shown on one line of a terminal: every unsafe character ([`is_unsafe`]) written as a visible
/// escape, everything else unchanged. Borrowed when nothing needed escaping.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    escaped(s, |_| false)
}

/// [`terminal_safe`] for text of several lines (a CSV or JSON export shown on a terminal): line feeds and tabs are
/// kept, every other unsafe character is escaped.
pub fn terminal_safe_text(s: &str) -> Cow<'_, str> {
    escaped(s, |c| c == '\n' || c == '\t')
}

/// The display width of `s` in terminal columns.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

fn char_width(c: char) -> usize {
    UnicodeWidthChar::width(c).unwrap_or(0)
}

/// `s` cut to at most `max` columns, ending in `…` when something was cut. Never splits a character; a wide
/// character that would straddle the limit is left out.
pub fn clip_end(s: &str, max: usize) -> Cow<'_, str> {
    if width(s) <= max {
        return Cow::Borrowed(s);
    }
    if max == 0 {
        return Cow::Borrowed("");
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = char_width(c);
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    Cow::Owned(out)
}

/// `s` cut to at most `max` columns from the front, starting with `…` when something was cut: layer names differ
/// at their ends (`model.layers.11.mlp.up_proj`).
pub fn clip_front(s: &str, max: usize) -> Cow<'_, str> {
    if width(s) <= max {
        return Cow::Borrowed(s);
    }
    if max == 0 {
        return Cow::Borrowed("");
    }
    let mut kept: Vec<char> = Vec::new();
    let mut used = 0;
    for c in s.chars().rev() {
        let w = char_width(c);
        if used + w > max - 1 {
            break;
        }
        kept.push(c);
        used += w;
    }
    let mut out = String::with_capacity(kept.len() * 2 + 3);
    out.push('…');
    out.extend(kept.into_iter().rev());
    Cow::Owned(out)
}

/// `s` followed by spaces up to `columns` display columns (nothing added when it is that wide already).
pub fn pad_end(s: &str, columns: usize) -> String {
    let w = width(s);
    let mut out = String::with_capacity(s.len() + columns.saturating_sub(w));
    out.push_str(s);
    out.extend(std::iter::repeat_n(' ', columns.saturating_sub(w)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_bidi_controls_become_visible() {
        let evil = "evil\x1b[2J\x1b]0;PWNED\x07name.weight";
        let safe = terminal_safe(evil);
        assert_eq!(safe, "evil\\x1b[2J\\x1b]0;PWNED\\x07name.weight");
        assert!(!safe.chars().any(is_unsafe));
        assert_eq!(terminal_safe("a\u{202e}gpj.exe"), "a\\u{202e}gpj.exe");
        assert_eq!(terminal_safe("nul\0and\u{9b}csi"), "nul\\x00and\\x9bcsi");
        assert_eq!(terminal_safe("line\nbreak\ttab"), "line\\nbreak\\ttab");
        assert_eq!(
            terminal_safe_text("a,b\n\"x\x1b\",\ty\n"),
            "a,b\n\"x\\x1b\",\ty\n"
        );
    }

    #[test]
    fn plain_and_foreign_text_is_left_alone_and_borrowed() {
        for s in [
            "fc1.weight",
            "couche_é_ü_日本語のとても長い名前のレイヤー",
            "emoji 🚀 ok",
            "back\\slash",
        ] {
            assert!(matches!(terminal_safe(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn clipping_counts_columns_and_never_splits_a_character() {
        let name = "couche_é_ü_日本語のとても長い名前のレイヤー";
        for max in 0..=width(name) + 2 {
            for clipped in [clip_end(name, max), clip_front(name, max)] {
                assert!(width(&clipped) <= max, "{max}: {clipped}");
                if max >= 2 {
                    // Nothing more than one column (a wide character that would straddle) is wasted.
                    assert!(
                        width(&clipped) + 1 >= max.min(width(name)),
                        "{max}: {clipped}"
                    );
                }
            }
        }
        assert_eq!(clip_end("abcdef", 4), "abc…");
        assert_eq!(clip_front("abcdef", 4), "…def");
        assert_eq!(clip_end("日本語", 4), "日…");
        assert_eq!(clip_front("日本語", 5), "…本語");
        assert_eq!(clip_end("abc", 3), "abc");
        assert_eq!(width(&pad_end("日本", 6)), 6);
        assert_eq!(pad_end("abcdef", 3), "abcdef");
    }
}
