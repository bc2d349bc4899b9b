//! Share links: `p2pshare:<64 hex id>,name=<percent-encoded name>,size=<bytes>`,
//! and for a private share `,secret=<26 base32>` (see [`private`](crate::private)).
//! Parameters are separated by `,`, which no shell splits or expands, so a
//! link pasted unquoted stays one word (`?` and `&`, as in URLs, are read
//! too: `&` would send a pasted command to the background).
//! A link carries everything a download needs besides peers, so it works
//! with no tracker at all (peers then come from the DHT). The id is what is
//! trusted: the manifest fetched from any peer must hash to it.

use std::fmt;
use std::str::FromStr;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use thiserror::Error;

use crate::manifest::FileId;
use crate::name::validate_name;
use crate::private::Secret;

const SCHEME: &str = "p2pshare:";

/// Characters left as they are in a link's name: unreserved URI characters.
const NAME_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LinkError {
    #[error("not a p2pshare link (expected p2pshare:<id>,name=...,size=...)")]
    NotALink,
    #[error("link has an invalid {0}")]
    Invalid(&'static str),
}

/// A parsed share link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLink {
    pub id: FileId,
    pub name: Option<String>,
    pub size: Option<u64>,
    /// A private share's secret.
    pub secret: Option<Secret>,
}

impl ShareLink {
    /// Whether `text` looks like a link (as opposed to a name or id).
    pub fn is_link(text: &str) -> bool {
        text.starts_with(SCHEME)
    }
}

impl fmt::Display for ShareLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}", self.id)?;
        if let Some(name) = &self.name {
            write!(f, ",name={}", utf8_percent_encode(name, NAME_SAFE))?;
        }
        if let Some(size) = self.size {
            write!(f, ",size={size}")?;
        }
        if let Some(secret) = &self.secret {
            write!(f, ",secret={secret}")?;
        }
        Ok(())
    }
}

impl FromStr for ShareLink {
    type Err = LinkError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let rest = text.strip_prefix(SCHEME).ok_or(LinkError::NotALink)?;
        let (id, query) = rest.split_once([',', '?']).unwrap_or((rest, ""));
        let id = id.parse().map_err(|_| LinkError::Invalid("id"))?;
        let mut link = ShareLink {
            id,
            name: None,
            size: None,
            secret: None,
        };
        for pair in query.split([',', '&']).filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("name", value)) => {
                    let name = percent_decode_str(value)
                        .decode_utf8()
                        .map_err(|_| LinkError::Invalid("name"))?;
                    validate_name(&name).map_err(|_| LinkError::Invalid("name"))?;
                    link.name = Some(name.into_owned());
                }
                Some(("size", value)) => {
                    link.size = Some(value.parse().map_err(|_| LinkError::Invalid("size"))?);
                }
                Some(("secret", value)) => {
                    link.secret = Some(value.parse().map_err(|_| LinkError::Invalid("secret"))?);
                }
                // Unknown parameters are ignored, so links can grow.
                _ => {}
            }
        }
        Ok(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_round_trip_with_awkward_names() {
        for name in ["sample.txt", "a b&c=d?e#f%g.txt", "ünï cödé", "~x-y_z."] {
            let link = ShareLink {
                id: FileId([7; 32]),
                name: Some(name.to_string()),
                size: Some(745),
                secret: None,
            };
            let text = link.to_string();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b":,=%-._~".contains(&b)),
                "a shell would split or expand {text}"
            );
            assert_eq!(text.parse::<ShareLink>(), Ok(link));
        }
        let bare = format!("p2pshare:{}", FileId([1; 32]));
        assert_eq!(
            bare.parse::<ShareLink>(),
            Ok(ShareLink {
                id: FileId([1; 32]),
                name: None,
                size: None,
                secret: None,
            })
        );
        let private = ShareLink {
            id: FileId([2; 32]),
            name: Some("p".into()),
            size: Some(1),
            secret: Some(Secret([5; 16])),
        };
        assert!(private.to_string().contains(",secret="));
        assert_eq!(
            private.to_string().parse::<ShareLink>(),
            Ok(private.clone())
        );
        // The URL-like form of earlier versions is still read.
        let old = format!(
            "p2pshare:{}?name=p&size=1&secret={}",
            FileId([2; 32]),
            Secret([5; 16])
        );
        assert_eq!(old.parse::<ShareLink>(), Ok(private));
    }

    #[test]
    fn bad_links_are_rejected() {
        let id = FileId([1; 32]);
        for bad in [
            "sample.txt".to_string(),
            "p2pshare:1234".to_string(),
            format!("p2pshare:{id}?name=..%2Fetc%2Fpasswd"),
            format!("p2pshare:{id}?name=%ff"),
            format!("p2pshare:{id}?size=-1"),
            format!("p2pshare:{id}?secret=short"),
        ] {
            assert!(bad.parse::<ShareLink>().is_err(), "{bad}");
        }
    }
}
