//! Where a home's keys go: a shared vault kept on another service (a second S3 server that
//! accepts only its own key, behind a tap that keeps every byte sent to it) is accepted by
//! homes whose keys were given, found in the environment, or neither; the tap must never see
//! the home's key id, and with the vault's own credentials passed the accept works and reads.
//!
//! One test function: it sets `AWS_*` variables, which the other tests of a binary would see.

use bucketsync::builtin_transport::BuiltinTransport;
use bucketsync::files::ReadSource;
use bucketsync::io::reach::{Given, Nothing, Reach};
use bucketsync::io::shared_vaults::SharedOptions;
use bucketsync::reqwest_transport::HttpOptions;
use bucketsync::session::{Session, SessionOptions, StateLocation};
use bucketsync::{Category, Credentials, Error, OpenMode, Store, VaultKey};
use bucketsync_suite::servers::{http, ServerKind, Tap, TestServer, ACCESS_KEY};

type HomeReach = Reach<Nothing, Nothing>;

fn home(store: &str, key: &VaultKey, device: &str, credentials: Option<Credentials>) -> Session {
    let mut options = SessionOptions::new(store, key, StateLocation::Memory);
    options.device = Some(device);
    options.mode = OpenMode::parse("join-or-create").unwrap();
    options.credentials = credentials;
    Session::open(options).unwrap()
}

fn reach(home: &Session) -> HomeReach {
    Reach::of(home, None, None, HttpOptions::default())
}

fn builtin(reach: &HomeReach, store: &Store) -> bucketsync::Result<BuiltinTransport> {
    BuiltinTransport::for_store_with(store, reach.http)
}

fn given(credentials: Option<Credentials>) -> Given<Nothing, Nothing> {
    Given {
        credentials,
        ..Given::default()
    }
}

async fn accept(
    bob: &Session,
    invitation: &str,
    credentials: Option<Credentials>,
) -> bucketsync::Result<Session> {
    let opened = bob
        .accept_shared_vault(
            &reach(bob),
            invitation,
            None,
            SharedOptions::new(StateLocation::Memory),
            given(credentials),
            builtin,
        )
        .await?;
    let transport = builtin(&opened.reach, &Store::parse(&opened.shared.store)?)?;
    let report = opened.vault.sync(&transport, 4, |_| {}).await?;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    Ok(opened.vault)
}

/// A request refused as `auth`, whose error says which credentials to pass.
fn assert_says_which_credentials(err: &Error, what: &str) {
    assert!(
        matches!(
            err,
            Error::Http {
                category: Category::Auth,
                ..
            }
        ) && err
            .to_string()
            .contains("pass this vault's own credentials"),
        "{what}: {err}"
    );
}

/// An accept refused as [`assert_says_which_credentials`] says.
fn assert_withheld(result: bucketsync::Result<Session>, what: &str) {
    let err = result.err().unwrap_or_else(|| panic!("{what}: accepted"));
    assert_says_which_credentials(&err, what);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_homes_keys_never_reach_a_store_an_invitation_names_on_another_service() {
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        std::env::remove_var(var);
    }
    let homes = TestServer::start(ServerKind::S3sFs).await;
    homes.create_bucket("homes").await;
    let elsewhere =
        TestServer::start_as(ServerKind::S3sFs, "their-key-id", "their-secret-0123456789").await;
    elsewhere.create_bucket("trips").await;
    let tap = Tap::start(&elsewhere.endpoint, None);
    let their_store = format!(
        "s3://trips/v/?endpoint={}&path_style=true&region=us-east-1",
        tap.endpoint
    );
    let theirs = elsewhere.own_credentials();
    let transport = http();

    // Alice keeps a vault on the other service (with its own key) and invites Bob.
    let alice = home(
        &homes.store_url("homes", "alice/"),
        &VaultKey::generate().unwrap(),
        "alice",
        Some(TestServer::credentials()),
    );
    let trip = alice
        .create_shared_vault(
            &reach(&alice),
            &their_store,
            "trip",
            SharedOptions::new(StateLocation::Memory),
            given(Some(theirs.clone())),
        )
        .unwrap();
    trip.vault.put("hotel", "by the lake").unwrap();
    trip.vault.sync(&transport, 4, |_| {}).await.unwrap();
    let bob_key = VaultKey::generate().unwrap();
    let bob_store = homes.store_url("homes", "bob/");
    let bob = home(&bob_store, &bob_key, "bob", Some(TestServer::credentials()));
    let public = bob.identity().unwrap().public().to_string();
    let invitation = trip
        .vault
        .share(&alice, &public, bucketsync::grant::Role::Read, &transport)
        .await
        .unwrap()
        .to_string();
    let before = tap.requests();
    assert!(before > 0 && !tap.saw(ACCESS_KEY));

    // A home whose keys were given: the grant's GET goes unsigned and fails, saying why.
    assert_withheld(accept(&bob, &invitation, None).await, "given keys");
    assert!(
        tap.requests() > before,
        "the GET reached the other server: {before} {}\n{}",
        tap.requests(),
        String::from_utf8_lossy(&tap.seen())
    );
    assert!(
        !tap.saw(ACCESS_KEY),
        "the home's key id reached the other server"
    );

    // A home whose keys are only in the environment: the same.
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var(
        "AWS_SECRET_ACCESS_KEY",
        bucketsync_suite::servers::SECRET_KEY,
    );
    let bob_env = home(&bob_store, &bob_key, "bob laptop", None);
    assert_eq!(
        bob_env.credentials().map(|c| c.access_key_id().to_owned()),
        Some(ACCESS_KEY.to_owned()),
        "the home took its keys from the environment"
    );
    assert_withheld(
        accept(&bob_env, &invitation, None).await,
        "environment keys",
    );
    // The lower-level call reads no environment either.
    let grant_store = Store::parse(&their_store).unwrap();
    let err = bob_env
        .accept_from(
            &invitation,
            None,
            None,
            &builtin(&reach(&bob_env), &grant_store).unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.category(), Category::Auth, "{err}");
    assert!(
        !tap.saw(ACCESS_KEY),
        "the environment's key id reached the other server"
    );
    // A folder home (which signs nothing) does not send the environment's keys there either.
    let folder = tempfile::tempdir().unwrap();
    let folder_home = home(
        &format!("file://{}", folder.path().display()),
        &VaultKey::generate().unwrap(),
        "bob desktop",
        None,
    );
    let folder_public = folder_home.identity().unwrap().public().to_string();
    let for_folder = trip
        .vault
        .share(
            &alice,
            &folder_public,
            bucketsync::grant::Role::Read,
            &transport,
        )
        .await
        .unwrap()
        .to_string();
    assert_withheld(
        accept(&folder_home, &for_folder, None).await,
        "a folder home, keys in the environment",
    );
    assert!(
        !tap.saw(ACCESS_KEY),
        "the environment's key id reached the other server"
    );

    // With the vault's own credentials, the accept works and reads; a later open of the vault
    // on another device of the home, given nothing, goes unsigned and says why.
    let accepted = accept(&bob_env, &invitation, Some(theirs.clone()))
        .await
        .unwrap();
    assert_eq!(
        accepted.get(b"hotel").unwrap().as_deref(),
        Some(&b"by the lake"[..])
    );
    bob_env.sync(&transport, 4, |_| {}).await.unwrap();
    std::env::remove_var("AWS_ACCESS_KEY_ID");
    std::env::remove_var("AWS_SECRET_ACCESS_KEY");
    bob.sync(&transport, 4, |_| {}).await.unwrap();
    let opened = bob
        .open_shared_vault(
            &reach(&bob),
            "trip",
            SharedOptions::new(StateLocation::Memory),
            Given::default(),
        )
        .unwrap();
    let err = opened.vault.sync(&transport, 4, |_| {}).await.unwrap_err();
    assert_says_which_credentials(&err, "a sync of the vault opened again");
    assert!(
        !tap.saw(ACCESS_KEY),
        "the home's key id reached the other server"
    );
    assert!(tap.saw("their-key-id"), "the vault's own key did");
    // A file stored in a vault of Bob's own there, given nothing: its upload fails the same way.
    let mine = bob
        .create_shared_vault(
            &reach(&bob),
            &their_store,
            "mine",
            SharedOptions::new(StateLocation::Memory),
            Given::default(),
        )
        .unwrap();
    let bytes = vec![7u8; 2 << 20];
    let mut source = ReadSource::new(&bytes[..], Some(bytes.len() as u64));
    let err = mine
        .vault
        .put_file("photo", &mut source, &transport, None, 4, |_| {})
        .await
        .unwrap_err();
    assert_says_which_credentials(&err, "a file's upload");
    assert!(
        !tap.saw(ACCESS_KEY),
        "the home's key id reached the other server"
    );

    // A vault on the home's own service still takes the home's keys.
    let near = bob
        .create_shared_vault(
            &reach(&bob),
            &homes.store_url("homes", "near/"),
            "near",
            SharedOptions::new(StateLocation::Memory),
            Given::default(),
        )
        .unwrap();
    assert_eq!(
        near.reach.credentials.map(|c| c.access_key_id().to_owned()),
        Some(ACCESS_KEY.to_owned())
    );
    near.vault.sync(&transport, 4, |_| {}).await.unwrap();
}
