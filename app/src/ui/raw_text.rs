//! Text for the elements the renderer writes out as it is: `<title>` and `<textarea>`.
//!
//! The page renderer escapes text everywhere except inside these two, where a closing tag
//! in user text (`</title><script>…`) would end the element and start markup of its own.
//! Everything put into them goes through [`escaped`]: on the server it is written with its
//! markup characters as character references, which the browser reads back as the very
//! same text; in the browser, where text is set through the DOM, it stays as it is.

/// `text`, safe as the content of a `<title>` or `<textarea>`.
pub fn escaped(text: impl Into<String>) -> String {
    let text = text.into();
    if cfg!(feature = "ssr") {
        escape(&text)
    } else {
        text
    }
}

/// `text` with `&`, `<`, `>`, `"` and `'` as character references.
fn escape(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_become_references() {
        assert_eq!(
            escape("Demo </title><script>alert('7')</script> & \"x\""),
            "Demo &lt;/title&gt;&lt;script&gt;alert(&#39;7&#39;)&lt;/script&gt; &amp; &quot;x&quot;"
        );
        assert_eq!(escape("plain text"), "plain text");
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn the_server_escapes() {
        assert_eq!(escaped("</textarea>"), "&lt;/textarea&gt;");
    }
}
