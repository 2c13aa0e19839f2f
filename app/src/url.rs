//! Percent-encoding of query values, both ways.

/// Percent-encodes `value` for use as one query-string value.
pub fn encode_component(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(char::from(byte))
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// Decodes one query-string value (`%XX` and `+`); malformed escapes are kept as they are.
pub fn decode_component(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (b'+', _) => {
                decoded.push(b' ');
                i += 1;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_what_it_encodes() {
        let original = "/admin/users?q=a b&é";
        assert_eq!(
            super::decode_component(&super::encode_component(original)),
            original
        );
        assert_eq!(super::decode_component("a+b"), "a b");
        assert_eq!(super::decode_component("%2"), "%2");
        assert_eq!(super::decode_component("%zz"), "%zz");
    }

    #[test]
    fn encodes_reserved_and_non_ascii() {
        assert_eq!(
            super::encode_component("/admin/users?q=a b&x"),
            "%2Fadmin%2Fusers%3Fq%3Da%20b%26x"
        );
        assert_eq!(super::encode_component("é"), "%C3%A9");
    }
}
