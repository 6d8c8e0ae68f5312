//! How a vault's requests reach its store, and the one rule for what a vault opened through a
//! home takes of the home's way there.
//!
//! An app gives each vault up to four things: credentials, a signer of its own (JS signs through
//! a function or a signer service), a transport of its own (the platform's HTTP) and deadlines.
//! A vault opened through a home ([`crate::io::shared_vaults`]) takes what the app gives for it,
//! and of the home's only what cannot carry the home's authority to a stranger:
//!
//! - **credentials and signer**: the home's serve only a store on the home's own service (the
//!   same endpoint and region: [`same_service`]), whatever their source (given, the `AWS_*`
//!   environment, a profile file): an invitation is text a stranger can send, and it may name
//!   any endpoint. A store elsewhere gets what the app passes for it, else its requests go out
//!   unsigned (and fail as `auth`, saying which credentials to pass). Credentials given for
//!   the vault replace the home's signer, and a signer given replaces the home's credentials;
//! - **transport and deadlines**: the app's, else the home's, for any store: they move bytes
//!   and carry no key. (A host transport that signs requests itself sees every request of the
//!   vaults opened through its home, and must sign only for its own service.)

use crate::credentials::Credentials;
use crate::io::http_options::HttpOptions;
use crate::store::Store;

/// The transport or signer type of an app that has none of its own (a signer in Python, Swift,
/// Kotlin, the command line; both in Rust programs that use the built-in transport): a
/// [`Reach`] of theirs never holds one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nothing {}

/// How one vault reaches its store: the credentials it signs with and the app's own pieces
/// (`T`: the app's transport, `S`: the app's signer; `None`: the built-in transport, no
/// signer). Kept with the vault, so that vaults opened through it as a home inherit from it as
/// the module's rule says.
#[derive(Clone)]
pub struct Reach<T, S> {
    /// What requests are signed with (given, or found in the environment when the vault was
    /// opened); `None`: unsigned.
    pub credentials: Option<Credentials>,
    /// The app signs each request itself (and `credentials` are then not used by it).
    pub signer: Option<S>,
    /// The app's transport; `None`: the built-in one for the store.
    pub transport: Option<T>,
    /// The built-in transport's deadlines (and JS's `timeoutMs`).
    pub http: HttpOptions,
}

impl<T, S> Reach<T, S> {
    /// How `session` reaches its store (its credentials, given or found when it was opened),
    /// with the app's own `transport` and `signer` and the deadlines `http`.
    pub fn of(
        session: &crate::io::session::Session,
        transport: Option<T>,
        signer: Option<S>,
        http: HttpOptions,
    ) -> Self {
        Reach {
            credentials: session.credentials(),
            signer,
            transport,
            http,
        }
    }
}

impl<T, S> core::fmt::Debug for Reach<T, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reach")
            .field("credentials", &self.credentials)
            .field("signer", &self.signer.is_some())
            .field("transport", &self.transport.is_some())
            .field("http", &self.http)
            .finish()
    }
}

/// What the app gives for one vault opened through a home; each `None` is left to the rule.
pub struct Given<T, S> {
    /// Credentials for the vault's store.
    pub credentials: Option<Credentials>,
    /// A signer for it.
    pub signer: Option<S>,
    /// A transport for it.
    pub transport: Option<T>,
    /// Deadlines for it.
    pub http: Option<HttpOptions>,
}

impl<T, S> Default for Given<T, S> {
    fn default() -> Self {
        Given {
            credentials: None,
            signer: None,
            transport: None,
            http: None,
        }
    }
}

impl<T, S> core::fmt::Debug for Given<T, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Given")
            .field("credentials", &self.credentials)
            .field("signer", &self.signer.is_some())
            .field("transport", &self.transport.is_some())
            .field("http", &self.http)
            .finish()
    }
}

/// Whether `a` and `b` are stores of one service: both `s3://`, with the same endpoint (both
/// AWS's when none is named) and the same region. Buckets and prefixes may differ: one set of
/// keys serves them all there.
pub fn same_service(a: &Store, b: &Store) -> bool {
    match (a, b) {
        (Store::S3(a), Store::S3(b)) => a.endpoint == b.endpoint && a.region == b.region,
        _ => false,
    }
}

/// What a vault in `store` reaches it with, when opened through a home on `home_store` that
/// reaches its own with `home`, the app giving `given` (the module's rule).
pub fn inherit<T: Clone, S: Clone>(
    home: &Reach<T, S>,
    home_store: &Store,
    store: &Store,
    given: Given<T, S>,
) -> Reach<T, S> {
    let same = same_service(home_store, store);
    let own_authority = given.credentials.is_some() || given.signer.is_some();
    let (credentials, signer) = match own_authority {
        true => (given.credentials, given.signer),
        false if same => (home.credentials.clone(), home.signer.clone()),
        false => (None, None),
    };
    Reach {
        credentials,
        signer,
        transport: given.transport.or_else(|| home.transport.clone()),
        http: given.http.unwrap_or(home.http),
    }
}

/// Whether a vault in `store`, opened through a home on `home_store`, is on another service:
/// the rule gives it nothing of the home's authority (nor the environment's), so what the app
/// does not give for it goes unsigned, and its `auth` failures say so ([`withheld_note`]).
pub fn withheld(home_store: &Store, store: &Store) -> bool {
    matches!(store, Store::S3(_)) && !same_service(home_store, store)
}

/// The note an `auth` failure of a vault in `store` carries when the rule withheld the home's
/// credentials from it.
pub fn withheld_note(store: &Store) -> String {
    format!(
        "{} is on another service than your home, whose credentials (and the environment's) are \
         never sent there: pass this vault's own credentials (or a signer) for it",
        store.display_name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(id: &str) -> Credentials {
        Credentials::new(id, "secret", None).unwrap()
    }

    fn store(url: &str) -> Store {
        Store::parse(url).unwrap()
    }

    type R = Reach<&'static str, &'static str>;

    fn home(credentials: Option<&str>, signer: Option<&'static str>) -> R {
        Reach {
            credentials: credentials.map(creds),
            signer,
            transport: Some("home transport"),
            http: HttpOptions::default(),
        }
    }

    fn key_id(reach: &R) -> Option<&str> {
        reach.credentials.as_ref().map(Credentials::access_key_id)
    }

    #[test]
    fn a_homes_authority_serves_its_own_service_only() {
        let mine = store("s3://home/p?endpoint=http://127.0.0.1:9000&path_style=true");
        let same = store("s3://other-bucket/q?endpoint=http://127.0.0.1:9000&path_style=true");
        let elsewhere = [
            store("s3://bbb/q?endpoint=http://127.0.0.1:9001&path_style=true"),
            store("s3://bbb/q?endpoint=http://127.0.0.1:9000&path_style=true&region=eu-west-1"),
            store("s3://bbb/q?region=us-east-1"),
        ];
        let with_keys = home(Some("HOME"), None);
        let inherited = inherit(&with_keys, &mine, &same, Given::default());
        assert_eq!(key_id(&inherited), Some("HOME"));
        assert!(!withheld(&mine, &same));
        for other in &elsewhere {
            let reach = inherit(&with_keys, &mine, other, Given::default());
            assert_eq!(key_id(&reach), None, "{other:?}");
            // Bytes still move the way the app moves them, and with its deadlines.
            assert_eq!(reach.transport, Some("home transport"));
            assert!(withheld(&mine, other));
        }
        // A signer is authority too: never to another service.
        let with_signer = home(None, Some("home signer"));
        assert_eq!(
            inherit(&with_signer, &mine, &same, Given::default()).signer,
            Some("home signer")
        );
        let reach = inherit(&with_signer, &mine, &elsewhere[0], Given::default());
        assert_eq!(reach.signer, None);
        // A folder store needs nothing; a folder home's vault on S3 is on another service (the
        // environment's keys are not sent there either).
        assert!(!withheld(&mine, &store("file:///tmp/x")));
        assert!(withheld(&store("file:///tmp/home"), &mine));
    }

    #[test]
    fn what_the_app_gives_wins_and_replaces_the_homes_other_authority() {
        let mine = store("s3://home/p?endpoint=http://127.0.0.1:9000&path_style=true");
        let same = store("s3://bbb/q?endpoint=http://127.0.0.1:9000&path_style=true");
        let elsewhere = store("s3://bbb/q?endpoint=http://127.0.0.1:9001&path_style=true");
        let both = home(Some("HOME"), Some("home signer"));
        for store in [&same, &elsewhere] {
            let given = Given {
                credentials: Some(creds("THEIRS")),
                ..Given::default()
            };
            let reach = inherit(&both, &mine, store, given);
            assert_eq!(key_id(&reach), Some("THEIRS"));
            assert_eq!(
                reach.signer, None,
                "given credentials replace the home's signer"
            );
            let given = Given {
                signer: Some("their signer"),
                transport: Some("their transport"),
                http: Some(HttpOptions {
                    total_timeout: std::time::Duration::from_secs(5),
                    ..HttpOptions::default()
                }),
                ..Given::default()
            };
            let reach = inherit(&both, &mine, store, given);
            assert_eq!(
                key_id(&reach),
                None,
                "a given signer replaces the home's keys"
            );
            assert_eq!(reach.signer, Some("their signer"));
            assert_eq!(reach.transport, Some("their transport"));
            assert_eq!(reach.http.total_timeout.as_secs(), 5);
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let reach = home(Some("HOME"), Some("s"));
        let shown = format!("{reach:?}");
        assert!(shown.contains("HOME"), "{shown}");
        assert!(!shown.contains("\"secret\""), "{shown}");
    }
}
