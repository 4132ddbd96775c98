//! Stage: the `custom-token` provider. Input: the provider's settings
//! ([`CustomTokenSettings`]), the values of the secrets it names (from the server's
//! configuration), and at each login the JWT a client sends (`{"token": "<JWT>"}`). Output: a
//! [`CustomTokenVerifier`], and for a valid token the user's external id (`sub`) and the
//! metadata the app maps into the user's `data`.
//!
//! A token is accepted when all of these hold (else 401 `AuthError`, the reason in the log):
//!
//! * it is at most [`MAX_TOKEN`] characters, its header's `alg` is the configured algorithm
//!   (`none` and any other algorithm are refused) and one of the configured keys verifies its
//!   signature;
//! * `exp` is present and in the future, `nbf` and `iat` (when present) are not in the future
//!   (no clock leeway, as for the server's own tokens);
//! * `aud` (a string or a list) holds the app id, or, when `config.audience` lists audiences,
//!   all of them (any one with `requireAnyAudience`);
//! * `sub` is a non-empty string of at most [`MAX_SUB`] characters;
//! * every `required` metadata field has a value (not `null`), and no mapped value is longer
//!   than [`MAX_METADATA`] characters as JSON.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use bson::Document;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use serde_json::Value;

use crate::error::ApiError;
use crate::settings::{CustomTokenSettings, MetadataField, SigningAlgorithm};

/// The longest token accepted, in characters (App Services' limit).
pub const MAX_TOKEN: usize = 1_000_000;
/// The longest `sub` accepted.
pub const MAX_SUB: usize = 1024;
/// The longest metadata value accepted, as JSON text (App Services' limit per field).
pub const MAX_METADATA: usize = 4096;
/// The shortest HS256 signing key accepted, in bytes (App Services: 32 to 512 characters).
pub const MIN_HS256_KEY: usize = 32;

/// What a valid token says.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// `sub`: the user's id in the external system.
    pub sub: String,
    /// The metadata fields, by `field_name`.
    pub metadata: Document,
}

/// Verifies the tokens of one app's `custom-token` provider.
pub struct CustomTokenVerifier {
    algorithm: Algorithm,
    keys: Vec<DecodingKey>,
    audience: Vec<String>,
    require_any_audience: bool,
    metadata_fields: Vec<MetadataField>,
}

impl std::fmt::Debug for CustomTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomTokenVerifier")
            .field("algorithm", &self.algorithm)
            .field("keys", &self.keys.len())
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// A refused custom token: 401 `AuthError`; `detail` goes to the log.
fn refused(detail: &str) -> ApiError {
    tracing::info!(reason = detail, "custom token refused");
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "AuthError",
        "invalid custom token",
    )
}

/// The decoding key of an RS256 signing key in PEM (SPKI `PUBLIC KEY` or PKCS#1
/// `RSA PUBLIC KEY`).
fn rsa_key(pem: &str) -> Result<DecodingKey, String> {
    let key = rsa::RsaPublicKey::from_public_key_pem(pem.trim())
        .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem.trim()))
        .map_err(|_| "is not an RSA public key in PEM".to_string())?;
    Ok(DecodingKey::from_rsa_raw_components(
        &key.n().to_bytes_be(),
        &key.e().to_bytes_be(),
    ))
}

impl CustomTokenVerifier {
    /// The verifier of `settings` for `app_id`, with the signing keys read from `secrets`
    /// (secret name → value). A missing or unusable key is an error naming the secret (never
    /// its value).
    pub fn new(
        settings: &CustomTokenSettings,
        app_id: &str,
        secrets: &BTreeMap<String, String>,
    ) -> Result<CustomTokenVerifier, String> {
        let mut keys = Vec::new();
        for name in &settings.signing_key_secrets {
            let value = secrets.get(name).ok_or_else(|| {
                format!(
                    "provider `custom-token`: the signing key secret `{name}` has no value (an \
                     exported app does not hold secret values): give it with `--secret \
                     {name}=VALUE` or the environment variable `ROLEGATE_SECRET_{name}`"
                )
            })?;
            let key = match settings.algorithm {
                SigningAlgorithm::Hs256 => {
                    if value.len() < MIN_HS256_KEY {
                        return Err(format!(
                            "provider `custom-token`: the signing key secret `{name}` is shorter \
                             than {MIN_HS256_KEY} bytes"
                        ));
                    }
                    DecodingKey::from_secret(value.as_bytes())
                }
                SigningAlgorithm::Rs256 => rsa_key(value).map_err(|why| {
                    format!("provider `custom-token`: the signing key secret `{name}` {why}")
                })?,
            };
            keys.push(key);
        }
        let audience = if settings.audience.is_empty() {
            vec![app_id.to_string()]
        } else {
            settings.audience.clone()
        };
        Ok(CustomTokenVerifier {
            algorithm: match settings.algorithm {
                SigningAlgorithm::Hs256 => Algorithm::HS256,
                SigningAlgorithm::Rs256 => Algorithm::RS256,
            },
            keys,
            audience,
            require_any_audience: settings.require_any_audience,
            metadata_fields: settings.metadata_fields.clone(),
        })
    }

    /// The subject and metadata of a valid token; else 401 `AuthError`.
    pub fn verify(&self, token: &str) -> Result<Verified, ApiError> {
        if token.len() > MAX_TOKEN {
            return Err(refused("token too long"));
        }
        let header = decode_header(token).map_err(|e| refused(&format!("header: {e}")))?;
        if header.alg != self.algorithm {
            return Err(refused(&format!(
                "algorithm {:?}, expected {:?}",
                header.alg, self.algorithm
            )));
        }
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let mut last = String::from("no signing key");
        let mut claims = None;
        for key in &self.keys {
            match decode::<serde_json::Map<String, Value>>(token, key, &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) => {
                    let signature =
                        matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature);
                    last = e.to_string();
                    if !signature {
                        break;
                    }
                }
            }
        }
        let claims = claims.ok_or_else(|| refused(&last))?;
        if let Some(iat) = claims.get("iat") {
            let iat = iat
                .as_f64()
                .ok_or_else(|| refused("`iat` is not a number"))?;
            #[allow(
                clippy::cast_precision_loss,
                reason = "seconds since the epoch fit a double exactly"
            )]
            if iat > crate::tokens::now() as f64 {
                return Err(refused("`iat` is in the future"));
            }
        }
        self.check_audience(claims.get("aud"))?;
        let sub = match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_SUB => s.clone(),
            _ => return Err(refused("`sub` is not a non-empty string")),
        };
        let metadata = self.metadata(&claims)?;
        Ok(Verified { sub, metadata })
    }

    fn check_audience(&self, aud: Option<&Value>) -> Result<(), ApiError> {
        let held: Vec<&str> = match aud {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => return Err(refused("no `aud`")),
        };
        let has = |a: &String| held.contains(&a.as_str());
        let ok = if self.require_any_audience {
            self.audience.iter().any(has)
        } else {
            self.audience.iter().all(has)
        };
        if ok {
            Ok(())
        } else {
            Err(refused("`aud` does not match the provider's audience"))
        }
    }

    fn metadata(&self, claims: &serde_json::Map<String, Value>) -> Result<Document, ApiError> {
        let mut out = Document::new();
        for field in &self.metadata_fields {
            let mut segments = field.path.iter();
            let first = segments.next().and_then(|s| claims.get(s));
            let value = segments.try_fold(first, |v, s| Some(v?.get(s))).flatten();
            match value {
                None | Some(Value::Null) if field.required => {
                    return Err(refused(&format!(
                        "required metadata field `{}` is missing",
                        field.path.join(".")
                    )));
                }
                None | Some(Value::Null) => {}
                Some(v) => {
                    if v.to_string().chars().count() > MAX_METADATA {
                        return Err(refused(&format!(
                            "metadata field `{}` is longer than {MAX_METADATA} characters",
                            field.path.join(".")
                        )));
                    }
                    let bson =
                        bson::to_bson(v).map_err(|e| refused(&format!("metadata field: {e}")))?;
                    out.insert(field.field_name.clone(), bson);
                }
            }
        }
        Ok(out)
    }
}
