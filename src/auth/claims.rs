//! The JWT payload LiveKit SDKs write, as a serde model.
//!
//! Deserialization is tolerant like Go's `encoding/json`: unknown fields are ignored, a
//! JSON `null` reads as the default, and unix times accept any non-negative JSON number
//! (integer or float). Serialization omits empty/false/`None` fields, as LiveKit does.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize};

/// Permissions for rooms (`video` claim). Getters apply LiveKit's defaults for absent fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VideoGrant {
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub room_create: bool,
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub room_list: bool,
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub room_record: bool,
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub room_admin: bool,
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub room_join: bool,
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub room: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_publish: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_subscribe: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_publish_data: Option<bool>,
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub can_publish_sources: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_update_own_metadata: Option<bool>,
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub ingress_admin: bool,
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub hidden: bool,
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub recorder: bool,
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub destination_room: String,
}

impl VideoGrant {
    /// `canPublish`, true when absent.
    pub fn can_publish(&self) -> bool {
        self.can_publish.unwrap_or(true)
    }

    /// `canSubscribe`, true when absent.
    pub fn can_subscribe(&self) -> bool {
        self.can_subscribe.unwrap_or(true)
    }

    /// `canPublishData`, following [`VideoGrant::can_publish`] when absent.
    pub fn can_publish_data(&self) -> bool {
        self.can_publish_data.unwrap_or_else(|| self.can_publish())
    }

    /// `canUpdateOwnMetadata`, false when absent.
    pub fn can_update_own_metadata(&self) -> bool {
        self.can_update_own_metadata.unwrap_or(false)
    }

    /// Whether a track from `source` (`camera`, `microphone`, `screen_share`,
    /// `screen_share_audio`; compared case-insensitively) may be published. Needs
    /// [`VideoGrant::can_publish`]; an empty `canPublishSources` allows every source.
    pub fn can_publish_source(&self, source: &str) -> bool {
        self.can_publish()
            && (self.can_publish_sources.is_empty()
                || self
                    .can_publish_sources
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(source)))
    }
}

/// The JWT payload: registered claims plus LiveKit's grants.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Claims {
    /// API key that signed the token.
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub iss: String,
    /// Participant identity (empty in Node service tokens and Python's service tokens).
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub sub: String,
    /// Expiry, unix seconds; `0` means absent (verification then fails with `MissingExpiry`).
    #[serde(deserialize_with = "unix_or_zero", skip_serializing_if = "is_default")]
    pub exp: u64,
    /// Not-before, unix seconds.
    #[serde(deserialize_with = "opt_unix", skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued-at, unix seconds (informational, not checked).
    #[serde(deserialize_with = "opt_unix", skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// JWT id; Go uses it as the identity when `sub` is empty.
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub jti: String,
    /// Participant display name.
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub name: String,
    /// Participant kind (`standard`, `agent`, `ingress`, `egress`, `sip`).
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub kind: String,
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub metadata: String,
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub attributes: HashMap<String, String>,
    /// Webhook body digest (std-base64 SHA-256).
    #[serde(deserialize_with = "or_default", skip_serializing_if = "is_default")]
    pub sha256: String,
    /// `roomConfig`, kept as raw JSON (a protojson `RoomConfiguration`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_config: Option<serde_json::Value>,
    #[serde(deserialize_with = "or_default")]
    pub video: VideoGrant,
}

impl Claims {
    /// The participant identity: `sub`, or `jti` when `sub` is empty (as Go does).
    pub fn identity(&self) -> &str {
        if self.sub.is_empty() {
            &self.jti
        } else {
            &self.sub
        }
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// JSON `null` reads as `T::default()`, like a Go zero value.
fn or_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn unix_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(opt_unix(d)?.unwrap_or(0))
}

/// A unix time from any non-negative JSON number (floats truncate, huge values saturate),
/// or `null`. Negative numbers and other types are errors.
fn opt_unix<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a non-negative unix time in seconds")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.is_finite() && v >= 0.0 {
                // `as` saturates at u64::MAX and truncates the fraction.
                Ok(Some(v as u64))
            } else {
                Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
            }
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_option(V)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grant(v: serde_json::Value) -> VideoGrant {
        serde_json::from_value(v).expect("grant")
    }

    #[test]
    fn grant_defaults() {
        let g = VideoGrant::default();
        assert!(g.can_publish() && g.can_subscribe() && g.can_publish_data());
        assert!(!g.can_update_own_metadata());
        let g = grant(json!({"canPublish": false}));
        assert!(!g.can_publish() && !g.can_publish_data() && g.can_subscribe());
        let g = grant(json!({"canPublish": false, "canPublishData": true}));
        assert!(!g.can_publish() && g.can_publish_data());
        let g = grant(
            json!({"canPublish": true, "canPublishData": false, "canUpdateOwnMetadata": true}),
        );
        assert!(g.can_publish() && !g.can_publish_data() && g.can_update_own_metadata());
        assert!(!grant(json!({"canSubscribe": false})).can_subscribe());
    }

    #[test]
    fn publish_sources() {
        let all = VideoGrant::default();
        for s in ["camera", "microphone", "screen_share", "screen_share_audio"] {
            assert!(all.can_publish_source(s));
        }
        let g = grant(json!({"canPublishSources": ["camera", "microphone"]}));
        assert!(g.can_publish_source("camera") && g.can_publish_source("MICROPHONE"));
        assert!(
            !g.can_publish_source("screen_share") && !g.can_publish_source("screen_share_audio")
        );
        let g = grant(json!({"canPublish": false, "canPublishSources": ["camera"]}));
        assert!(!g.can_publish_source("camera"));
    }

    #[test]
    fn serializes_like_livekit() {
        let c = Claims {
            iss: "key".into(),
            sub: "alice".into(),
            exp: 100,
            room_config: Some(json!({"emptyTimeout": 5})),
            video: VideoGrant {
                room_join: true,
                room: "r".into(),
                can_publish_sources: vec!["camera".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let v = serde_json::to_value(&c).expect("serialize");
        assert_eq!(
            v,
            json!({"iss": "key", "sub": "alice", "exp": 100, "roomConfig": {"emptyTimeout": 5},
                   "video": {"roomJoin": true, "room": "r", "canPublishSources": ["camera"]}})
        );
        assert_eq!(serde_json::from_value::<Claims>(v).expect("back"), c);
    }

    #[test]
    fn tolerant_numbers_and_nulls() {
        let c: Claims = serde_json::from_value(json!({
            "exp": 1.7e9, "nbf": 5, "iat": null, "sub": null, "video": null, "unknown": [1]
        }))
        .expect("claims");
        assert_eq!((c.exp, c.nbf, c.iat), (1_700_000_000, Some(5), None));
        assert_eq!(c.video, VideoGrant::default());
        let c: Claims = serde_json::from_str(r#"{"exp": 1e300}"#).expect("huge float");
        assert_eq!(c.exp, u64::MAX);
        // serde_json reads a too-large integer as a float: it saturates too.
        let c: Claims =
            serde_json::from_str(r#"{"exp": 123456789012345678901234567890}"#).expect("big int");
        assert_eq!(c.exp, u64::MAX);
        for bad in [
            r#"{"exp": -1}"#,
            r#"{"exp": "100"}"#,
            r#"{"nbf": -0.5}"#,
            r#"{"exp": true}"#,
            r#"{"video": {"roomJoin": "yes"}}"#,
            r#"{"attributes": {"a": 1}}"#,
            r#"{"sub": 5}"#,
            r#"[1, 2]"#,
        ] {
            assert!(serde_json::from_str::<Claims>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identity_falls_back_to_jti() {
        let mut c = Claims {
            jti: "j".into(),
            ..Default::default()
        };
        assert_eq!(c.identity(), "j");
        c.sub = "s".into();
        assert_eq!(c.identity(), "s");
    }
}
