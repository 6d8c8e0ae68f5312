//! Signing requests: AWS Signature Version 4 (header-signed requests and presigned URLs), and
//! the hook that lets an app sign with something else.

use std::time::{Duration, UNIX_EPOCH};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::http::{Method, Request};
use crate::ids::Timestamp;
use crate::store::encode_query;

/// Signs requests before they are handed out. The engine calls it from
/// [`crate::Engine::poll_request`] with the time the request goes out.
///
/// Implement it to have an external service sign (an app that holds no long-lived keys); or
/// give the engine no signer and sign or presign in the transport.
pub trait Signer: Send + Sync {
    /// Adds authentication to `request` (headers or query) for wall time `now`.
    ///
    /// # Errors
    /// Whatever stops the request from being signed; the sync stops with it.
    fn sign(&self, request: &mut Request, now: Timestamp) -> Result<()>;
}

/// AWS Signature Version 4 for S3, with credentials held in memory.
#[derive(Clone, Debug)]
pub struct SigV4 {
    credentials: Credentials,
    region: String,
}

impl SigV4 {
    /// A signer for `region` with `credentials`.
    pub fn new(credentials: Credentials, region: impl Into<String>) -> Self {
        SigV4 {
            credentials,
            region: region.into(),
        }
    }

    fn identity(&self) -> Identity {
        aws_credential_types::Credentials::new(
            self.credentials.access_key_id(),
            self.credentials.secret_access_key(),
            self.credentials.session_token().map(str::to_owned),
            None,
            "bucketsync",
        )
        .into()
    }

    fn settings() -> SigningSettings {
        let mut settings = SigningSettings::default();
        // S3 wants the path signed exactly as sent: our URLs are already percent-encoded once.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings
    }

    /// A presigned URL for `method` on `url`, valid for `expires` from `now`. Anyone holding the
    /// URL can make that one request, with any plain HTTP client, until it expires.
    ///
    /// # Errors
    /// `Config` when the URL cannot be signed or `expires` exceeds S3's 7 days.
    pub fn presign(
        &self,
        method: Method,
        url: &str,
        expires: Duration,
        now: Timestamp,
    ) -> Result<String> {
        if expires > Duration::from_secs(7 * 24 * 3600) {
            return Err(Error::Config(
                "a presigned URL cannot be valid for more than 7 days".into(),
            ));
        }
        let mut settings = Self::settings();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires);
        settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
        let identity = self.identity();
        let params = self.params(&identity, settings, now)?;
        let signable = SignableRequest::new(
            method.as_str(),
            url,
            std::iter::empty(),
            SignableBody::UnsignedPayload,
        )
        .map_err(signing_error)?;
        let (instructions, _) = sign(signable, &params).map_err(signing_error)?.into_parts();
        let mut out = url.to_owned();
        let mut separator = if url.contains('?') { '&' } else { '?' };
        for (name, value) in instructions.params() {
            out.push(separator);
            out.push_str(name);
            out.push('=');
            out.push_str(&encode_query(value));
            separator = '&';
        }
        Ok(out)
    }

    fn params<'a>(
        &'a self,
        identity: &'a Identity,
        settings: SigningSettings,
        now: Timestamp,
    ) -> Result<aws_sigv4::http_request::SigningParams<'a>> {
        Ok(v4::SigningParams::builder()
            .identity(identity)
            .region(&self.region)
            .name("s3")
            .time(UNIX_EPOCH + Duration::from_millis(now.0))
            .settings(settings)
            .build()
            .map_err(|e| Error::Config(format!("cannot sign: {e}")))?
            .into())
    }
}

impl Signer for SigV4 {
    fn sign(&self, request: &mut Request, now: Timestamp) -> Result<()> {
        let mut settings = Self::settings();
        // Sign the body's hash, so a store that checks it (AWS, s3s) refuses an altered body.
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let identity = self.identity();
        let params = self.params(&identity, settings, now)?;
        let headers = request
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        let signable = SignableRequest::new(
            request.method.as_str(),
            request.url.as_str(),
            headers,
            SignableBody::Bytes(&request.body),
        )
        .map_err(signing_error)?;
        let (instructions, _) = sign(signable, &params).map_err(signing_error)?.into_parts();
        let (headers, _) = instructions.into_parts();
        for header in headers {
            request
                .headers
                .push((header.name().to_owned(), header.value().to_owned()));
        }
        Ok(())
    }
}

fn signing_error(e: impl std::fmt::Display) -> Error {
    Error::Config(format!("cannot sign the request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::RequestKind;
    use crate::ids::RequestId;

    fn example() -> SigV4 {
        // The example credentials of AWS's Signature Version 4 documentation.
        let creds = Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
        )
        .unwrap();
        SigV4::new(creds, "us-east-1")
    }

    /// 2013-05-24T00:00:00Z, the time of AWS's published S3 examples.
    const EXAMPLE_TIME: Timestamp = Timestamp(1_369_353_600_000);

    #[test]
    fn header_signature_matches_awss_get_object_example() {
        let mut request = Request {
            id: RequestId(1),
            kind: RequestKind::GetSegment,
            method: Method::Get,
            url: "https://examplebucket.s3.amazonaws.com/test.txt".into(),
            headers: vec![("range".into(), "bytes=0-9".into())],
            body: Default::default(),
        };
        example().sign(&mut request, EXAMPLE_TIME).unwrap();
        let auth = request.header("authorization").unwrap();
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert_eq!(request.header("x-amz-date"), Some("20130524T000000Z"));
    }

    #[test]
    fn presigned_url_matches_awss_example() {
        let url = example()
            .presign(
                Method::Get,
                "https://examplebucket.s3.amazonaws.com/test.txt",
                Duration::from_secs(86400),
                EXAMPLE_TIME,
            )
            .unwrap();
        assert!(
            url.ends_with(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{url}"
        );
        assert!(url.contains(
            "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        ));
    }

    #[test]
    fn session_tokens_are_sent_and_secrets_never_are() {
        let creds = Credentials::new("AK", "SECRET-VALUE", Some("SESSION".into())).unwrap();
        let mut request = Request {
            id: RequestId(1),
            kind: RequestKind::List,
            method: Method::Get,
            url: "http://127.0.0.1:9000/b?list-type=2&prefix=a%2F".into(),
            headers: vec![],
            body: Default::default(),
        };
        SigV4::new(creds, "us-east-1")
            .sign(&mut request, EXAMPLE_TIME)
            .unwrap();
        assert_eq!(request.header("x-amz-security-token"), Some("SESSION"));
        assert!(!format!("{request:?}").contains("SECRET-VALUE"));
    }
}
