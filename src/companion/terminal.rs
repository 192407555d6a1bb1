//! Text from a daemon made safe to print in a terminal.
//!
//! Names, versions, error descriptions and URLs in a health report come from the daemon
//! (and through it from providers). Printed raw, an escape sequence in one could rewrite
//! the screen, set the window title, or hide a line; so every control character (C0, DEL,
//! C1, which includes ESC and BEL) and every bidirectional-override character is replaced
//! by `?` before such text reaches the terminal.
//!
//! Also the one way a line clears the terminal line it starts on ([`line_start`]), so a
//! countdown drawn there (`tether watch`) is replaced rather than run into.

use std::borrow::Cow;

/// Returns the cursor to the start of its terminal line and clears that line. On a
/// terminal `tether watch` prints it before every line, so the countdown line at the
/// bottom is replaced by the line, not run into; the countdown is redrawn below at its
/// next tick.
pub const CLEAR_LINE: &str = "\r\x1b[K";

/// What starts a line written to an output that `is_terminal`: [`CLEAR_LINE`] there,
/// nothing elsewhere (a pipe or a log gets no escape sequences).
pub fn line_start(is_terminal: bool) -> &'static str {
    if is_terminal {
        CLEAR_LINE
    } else {
        ""
    }
}

/// True for characters that change how a terminal shows the text around them.
fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control and bidi-override character replaced by `?` (for one field:
/// a line break in a name could fake a line of its own).
pub fn safe(s: &str) -> Cow<'_, str> {
    replace(s, unsafe_char)
}

/// [`safe`] that keeps line breaks (`\n`), for whole messages of several lines.
pub fn safe_lines(s: &str) -> Cow<'_, str> {
    replace(s, |c| c != '\n' && unsafe_char(c))
}

fn replace(s: &str, bad: impl Fn(char) -> bool) -> Cow<'_, str> {
    if s.chars().any(&bad) {
        s.chars()
            .map(|c| if bad(c) { '?' } else { c })
            .collect::<String>()
            .into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_controls_are_replaced() {
        assert_eq!(safe("ok"), "ok");
        assert_eq!(safe("a\x1b[2Jb\x07c\u{9b}d"), "a?[2Jb?c?d");
        assert_eq!(safe("x\ny\rz\t"), "x?y?z?");
        assert_eq!(safe("abc\u{202e}fed"), "abc?fed");
        assert_eq!(safe_lines("a\nb\x1b[1m"), "a\nb?[1m");
        assert_eq!(safe("ünïcødé · ✓"), "ünïcødé · ✓");
    }
}
