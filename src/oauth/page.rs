//! The small HTML page the loopback listener shows in the browser tab.

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// A complete page: `ok` picks the colour and the mark, `title` and `detail` are text.
pub(crate) fn render(ok: bool, title: &str, detail: &str) -> String {
    let (mark, colour) = if ok {
        ("&#10003;", "#1a7f37")
    } else {
        ("&#10007;", "#cf222e")
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Tether: {title}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1f2328}}\
h1{{font-size:1.4rem}}.mark{{color:{colour};font-size:2.5rem}}p{{line-height:1.5}}</style></head>\
<body><div class=\"mark\">{mark}</div><h1 id=\"title\">{title}</h1><p id=\"detail\">{detail}</p>\
<p><small>You can close this tab.</small></p></body></html>\n",
        title = escape(title),
        detail = escape(detail),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        let page = render(false, "<script>", "a & \"b\"");
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("a &amp; &quot;b&quot;"));
        assert!(!page.contains("<script>"));
    }
}
