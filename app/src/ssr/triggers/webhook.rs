//! Webhook calls: checking their signature, and mapping their JSON payload to fields.
//!
//! A call is signed either the GitHub way, `X-Hub-Signature-256: sha256=<hex HMAC-SHA256
//! of the body under the secret>`, or the GitLab way, `X-Gitlab-Token: <the secret>`.
//! Both are compared in constant time.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::workflow::definition::Fields;

/// Largest payload a webhook accepts.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// Most fields one webhook maps from its payload.
pub const MAX_MAPPINGS: usize = 64;

/// The GitHub-style signature header.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The GitLab-style token header.
pub const TOKEN_HEADER: &str = "x-gitlab-token";

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unsigned,
    BadSignature,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Self::Unsigned => "the call carried no X-Hub-Signature-256 or X-Gitlab-Token header",
            Self::BadSignature => "the call's signature does not match the trigger's secret",
        }
    }
}

/// The GitHub-style signature of `body` under `secret`, as the header carries it.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, body).finalize().into_bytes())
    )
}

fn mac(secret: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac
}

/// Checks a call's signature (`signature`: the X-Hub-Signature-256 value; `token`: the
/// X-Gitlab-Token value) against `secret`.
pub fn verify(
    secret: &str,
    signature: Option<&str>,
    token: Option<&str>,
    body: &[u8],
) -> Result<(), Refusal> {
    if let Some(signature) = signature {
        let digest = signature
            .trim()
            .strip_prefix("sha256=")
            .and_then(|h| hex::decode(h).ok())
            .ok_or(Refusal::BadSignature)?;
        return mac(secret, body)
            .verify_slice(&digest)
            .map_err(|_| Refusal::BadSignature);
    }
    if let Some(token) = token {
        return if bool::from(token.as_bytes().ct_eq(secret.as_bytes())) {
            Ok(())
        } else {
            Err(Refusal::BadSignature)
        };
    }
    Err(Refusal::Unsigned)
}

/// The fields `mapping` (field name to JSON pointer) takes from `payload`; a pointer that
/// finds nothing leaves its field out.
pub fn map_fields(mapping: &BTreeMap<String, String>, payload: &Value) -> Fields {
    mapping
        .iter()
        .filter_map(|(field, pointer)| {
            payload
                .pointer(pointer)
                .map(|value| (field.clone(), value.clone()))
        })
        .collect()
}

/// Checks a mapping as typed in a form, one `field = /json/pointer` per line.
pub fn parse_mapping(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut mapping = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((field, pointer)) = line.split_once('=') else {
            return Err(format!(
                "line {}: write `field = /json/pointer`",
                number + 1
            ));
        };
        let (field, pointer) = (field.trim(), pointer.trim());
        if !crate::workflow::fields::is_valid_path(field) || field.contains('.') {
            return Err(format!(
                "line {}: `{field}` is not a field name (letters, digits, _ and -)",
                number + 1
            ));
        }
        if !(pointer.is_empty() || pointer.starts_with('/')) {
            return Err(format!(
                "line {}: a JSON pointer starts with `/`, like /repository/name",
                number + 1
            ));
        }
        if mapping
            .insert(field.to_owned(), pointer.to_owned())
            .is_some()
        {
            return Err(format!("line {}: `{field}` is mapped twice", number + 1));
        }
        if mapping.len() > MAX_MAPPINGS {
            return Err(format!("at most {MAX_MAPPINGS} fields can be mapped"));
        }
    }
    Ok(mapping)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn github_signature_is_checked() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let good = sign("s3cret", body);
        assert_eq!(verify("s3cret", Some(&good), None, body), Ok(()));
        assert_eq!(
            verify("other", Some(&good), None, body),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify("s3cret", Some(&good), None, b"{}"),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify("s3cret", Some("sha256=zz"), None, body),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify("s3cret", Some("sha1=abc"), None, body),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn known_hmac_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn gitlab_token_is_checked() {
        assert_eq!(verify("s3cret", None, Some("s3cret"), b"{}"), Ok(()));
        assert_eq!(
            verify("s3cret", None, Some("s3cre"), b"{}"),
            Err(Refusal::BadSignature)
        );
        assert_eq!(verify("s3cret", None, None, b"{}"), Err(Refusal::Unsigned));
    }

    #[test]
    fn payload_is_mapped_by_pointer() {
        let mapping = parse_mapping(
            "# where the push went\nbranch = /ref\n repo = /repository/full_name \nfirst = /commits/0/id\nmissing = /nope\n",
        )
        .unwrap();
        let payload = json!({
            "ref": "refs/heads/main",
            "repository": { "full_name": "acme/os" },
            "commits": [{ "id": "abc" }]
        });
        let fields = map_fields(&mapping, &payload);
        assert_eq!(fields["branch"], "refs/heads/main");
        assert_eq!(fields["repo"], "acme/os");
        assert_eq!(fields["first"], "abc");
        assert!(!fields.contains_key("missing"));
    }

    #[test]
    fn bad_mappings_name_the_line() {
        assert!(parse_mapping("branch /ref").unwrap_err().contains("line 1"));
        assert!(
            parse_mapping("a.b = /ref")
                .unwrap_err()
                .contains("not a field name")
        );
        assert!(parse_mapping("\nb = ref").unwrap_err().contains("line 2"));
        assert!(
            parse_mapping("b = /a\nb = /c")
                .unwrap_err()
                .contains("twice")
        );
    }
}
