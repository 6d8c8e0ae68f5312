//! Sharing with another person, on real servers (SeaweedFS, then s3s-fs): homes, identities,
//! shared vaults made in a home, grants sealed to another person's identity, invitations
//! accepted on several devices.
//!
//! The second test is about roles as every reader enforces them: what a member with the role
//! read forges straight into the bucket counts for no one, and what a revoked member writes
//! after the revocation neither; what is written after it, the revoked member cannot decrypt.

use bucketsync::driver::Transport;
use bucketsync::files::{ReadSource, WriteSink};
use bucketsync::grant::{Invitation, Role};
use bucketsync::home::SharedVault;
use bucketsync::reqwest_transport::ReqwestTransport;
use bucketsync::session::{Session, SessionOptions, StateLocation};
use bucketsync::{Category, OpenMode, RequestKind, VaultKey};
use bucketsync_suite::servers::{http, ServerKind, TestServer};

fn open(store: &str, key: &VaultKey, device: &str, mode: OpenMode) -> Session {
    let mut options = SessionOptions::new(store, key, StateLocation::Memory);
    options.device = Some(device);
    options.mode = mode;
    options.credentials = Some(TestServer::credentials());
    Session::open(options).unwrap()
}

fn open_shared(home: &Session, shared: &SharedVault, device: &str, mode: OpenMode) -> Session {
    let session = open(&shared.store, shared.key(), device, mode);
    session.enter_shared(home, shared).unwrap();
    session
}

async fn sync<T: Transport>(session: &Session, transport: &T) -> bucketsync::SyncReport {
    let report = session.sync(transport, 4, |_| {}).await.unwrap();
    assert!(report.errors.is_empty(), "{report}: {:?}", report.errors);
    report
}

/// Alice's, Bob's and Carol's homes (a device each) in the bucket `family` of `server`.
struct Family {
    homes: String,
    shared_store: String,
    alice_key: VaultKey,
    bob_key: VaultKey,
    alice: Session,
    bob: Session,
    carol: Session,
}

async fn family(server: &TestServer) -> Family {
    server.create_bucket("family").await;
    let homes = server.store_url("family", "homes/");
    let keys = [(); 3].map(|_| VaultKey::generate().unwrap());
    let [alice, bob, carol] = [("alice laptop", 0), ("bob phone", 1), ("carol phone", 2)]
        .map(|(device, i)| open(&homes, &keys[i], device, OpenMode::Create));
    let [alice_key, bob_key, _] = keys;
    Family {
        shared_store: server.store_url("family", "shared/"),
        homes,
        alice_key,
        bob_key,
        alice,
        bob,
        carol,
    }
}

impl Family {
    /// Alice's vault `emma`, made in her home and opened on her laptop, with `allergies` set.
    async fn emma<T: Transport>(&self, transport: &T) -> (SharedVault, Session) {
        let emma = self
            .alice
            .create_shared(&self.shared_store, "emma")
            .unwrap();
        sync(&self.alice, transport).await;
        let emma_a = open_shared(&self.alice, &emma, "alice laptop", OpenMode::Create);
        emma_a.put("allergies", "penicillin").unwrap();
        sync(&emma_a, transport).await;
        (emma, emma_a)
    }

    /// [`Family::emma`] shared with Bob and Carol in these roles (both accepted, Alice's
    /// laptop not synced since): Alice's replica, Bob's vault, Carol's vault.
    async fn emma_shared<T: Transport>(
        &self,
        bob: Role,
        carol: Role,
        transport: &T,
    ) -> (Session, SharedVault, SharedVault) {
        let (_, emma_a) = self.emma(transport).await;
        let bobs = self.invite(&emma_a, &self.bob, bob, transport).await;
        let carols = self.invite(&emma_a, &self.carol, carol, transport).await;
        (emma_a, bobs, carols)
    }

    /// Alice (on `emma_a`) shares the vault with `who` as `role`, and `who` accepts.
    async fn invite<T: Transport>(
        &self,
        emma_a: &Session,
        who: &Session,
        role: Role,
        transport: &T,
    ) -> SharedVault {
        let public = who.identity().unwrap().public().to_string();
        let invitation = emma_a
            .share(&self.alice, &public, role, transport)
            .await
            .unwrap();
        let credentials = Some(TestServer::credentials());
        who.accept(&invitation.to_string(), credentials, transport)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_vault_shared_from_a_home_opens_for_the_recipient_on_each_of_their_devices() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        let transport: ReqwestTransport = http();
        let Family {
            homes,
            shared_store,
            alice_key,
            bob_key,
            alice,
            bob,
            carol,
        } = family(&server).await;

        // Alice makes two vaults in her home and writes into one.
        let emma = alice.create_shared(&shared_store, "emma").unwrap();
        let liam = alice.create_shared(&shared_store, "liam").unwrap();
        assert_ne!(emma.key().vault_id(), liam.key().vault_id());
        assert_eq!(
            alice
                .create_shared(&shared_store, "emma")
                .unwrap_err()
                .category(),
            Category::Config,
            "a label once"
        );
        sync(&alice, &transport).await;
        let emma_a = open_shared(&alice, &emma, "alice laptop", OpenMode::Create);
        emma_a.put("allergies", "penicillin").unwrap();
        sync(&emma_a, &transport).await;

        // She shares it with Bob (write) and Carol (read): one PUT each.
        let bob_public = bob.identity().unwrap().public().to_string();
        let carol_public = carol.identity().unwrap().public().to_string();
        let to_bob = emma_a
            .share(&alice, &bob_public, Role::Write, &transport)
            .await
            .unwrap();
        let to_carol = emma_a
            .share(&alice, &carol_public, Role::Read, &transport)
            .await
            .unwrap();
        let text = to_bob.to_string();
        assert_eq!(Invitation::parse(&text).unwrap(), to_bob);
        assert_eq!(to_bob.from, alice.identity().unwrap().fingerprint());

        // Carol cannot use Bob's invitation: the grant is sealed to Bob.
        let stolen = carol
            .accept(&text, Some(TestServer::credentials()), &transport)
            .await
            .unwrap_err();
        assert_eq!(stolen.category(), Category::Access, "{kind:?}: {stolen}");

        // An invitation from someone else than the fingerprint Bob was told is refused, and
        // one altered to point at another store (where a copy of the grant could be) too.
        let other = carol.identity().unwrap().fingerprint().to_string();
        let e = bob
            .accept_from(
                &text,
                Some(&other),
                Some(TestServer::credentials()),
                &transport,
            )
            .await
            .unwrap_err();
        assert_eq!(e.category(), Category::Access, "{e}");
        let moved = Invitation {
            store: server.store_url("family", "elsewhere/"),
            ..to_bob.clone()
        };
        assert!(bob
            .accept(
                &moved.to_string(),
                Some(TestServer::credentials()),
                &transport
            )
            .await
            .is_err());
        assert!(bob.shared().unwrap().is_empty(), "nothing kept");

        // Bob accepts on his phone; the vault is in his home.
        let accepted = bob
            .accept(&text, Some(TestServer::credentials()), &transport)
            .await
            .unwrap();
        assert_eq!(accepted.label, "emma");
        assert_eq!(accepted.role, Role::Write);
        assert_eq!(accepted.from, Some(alice.identity().unwrap().fingerprint()));
        assert_eq!(bob.shared().unwrap().len(), 1);
        let emma_b = open_shared(&bob, &accepted, "bob phone", OpenMode::Join);
        sync(&emma_b, &transport).await;
        assert_eq!(
            emma_b.get(b"allergies").unwrap().as_deref(),
            Some(&b"penicillin"[..])
        );
        emma_b.put("visit/2026-11-25", "checkup by Bob").unwrap();
        sync(&emma_b, &transport).await;
        sync(&bob, &transport).await;

        // Bob's second device opens his home only, and finds the vault there.
        let bob_laptop = open(&homes, &bob_key, "bob laptop", OpenMode::Join);
        sync(&bob_laptop, &transport).await;
        assert_eq!(
            bob_laptop.identity().unwrap().fingerprint(),
            bob.identity().unwrap().fingerprint(),
            "one identity per home"
        );
        let found = bob_laptop.shared_vault("emma").unwrap();
        let emma_b2 = open_shared(&bob_laptop, &found, "bob laptop", OpenMode::Join);
        sync(&emma_b2, &transport).await;
        assert!(emma_b2.get(b"visit/2026-11-25").unwrap().is_some());

        // Alice's second device sees Bob's write through her home's record.
        let alice_phone = open(&homes, &alice_key, "alice phone", OpenMode::Join);
        sync(&alice_phone, &transport).await;
        let labels: Vec<String> = alice_phone
            .shared()
            .unwrap()
            .into_iter()
            .map(|s| s.label)
            .collect();
        assert_eq!(labels, ["emma", "liam"]);
        // liam was made on the laptop and never opened there: the phone's first sync of it
        // creates it (a vault the person made is joined, or created, never NotFound).
        let liam_entry = alice_phone.shared_vault("liam").unwrap();
        assert_eq!(liam_entry.open_mode(), OpenMode::default());
        let liam_p = open_shared(
            &alice_phone,
            &liam_entry,
            "alice phone",
            liam_entry.open_mode(),
        );
        sync(&liam_p, &transport).await;
        assert_eq!(accepted.open_mode(), OpenMode::Join);
        let emma_a2 = open_shared(
            &alice_phone,
            &alice_phone.shared_vault("emma").unwrap(),
            "alice phone",
            OpenMode::Join,
        );
        let report = sync(&emma_a2, &transport).await;
        assert_eq!(report.requests_of(RequestKind::GetGrant), 0);
        assert_eq!(
            emma_a2.get(b"visit/2026-11-25").unwrap().as_deref(),
            Some(&b"checkup by Bob"[..])
        );

        // Carol accepts hers and reads. Bob, who may write, may not share further.
        let carols = carol
            .accept(
                &to_carol.to_string(),
                Some(TestServer::credentials()),
                &transport,
            )
            .await
            .unwrap();
        assert_eq!(carols.role, Role::Read);
        let emma_c = open_shared(&carol, &carols, "carol phone", OpenMode::Join);
        sync(&emma_c, &transport).await;
        assert_eq!(
            emma_c.get(b"allergies").unwrap().as_deref(),
            Some(&b"penicillin"[..])
        );
        let refused = emma_b
            .share(&bob, &carol_public, Role::Read, &transport)
            .await
            .unwrap_err();
        assert_eq!(refused.category(), Category::Access, "{refused}");
        // A grant of emma to Alice herself (as a member could make one with the key) does not
        // replace her own record: she stays the owner.
        let alice_public = alice.identity().unwrap().public().to_string();
        let to_alice = emma_a
            .share(&alice, &alice_public, Role::Read, &transport)
            .await
            .unwrap();
        let kept = alice
            .accept(
                &to_alice.to_string(),
                Some(TestServer::credentials()),
                &transport,
            )
            .await
            .unwrap();
        assert_eq!((kept.role, kept.from), (Role::Owner, None));
        assert_eq!(alice.shared_vault("emma").unwrap().role, Role::Owner);

        // Nobody but Alice holds liam's key: a liam session with Bob's emma key is another
        // vault, and an invitation to liam's folder with emma's grant id is not there.
        let guessed = Invitation {
            vault: liam.key().vault_id(),
            ..to_bob.clone()
        };
        let e = bob
            .accept(
                &guessed.to_string(),
                Some(TestServer::credentials()),
                &transport,
            )
            .await
            .unwrap_err();
        assert_eq!(e.category(), Category::NotFound, "{e}");
        drop(server);
    }
}

/// Whether the report says, with the category `access`, that something was ignored.
fn refused(report: &bucketsync::SyncReport) -> Vec<String> {
    report
        .errors
        .iter()
        .filter(|e| e.category() == Category::Access)
        .map(ToString::to_string)
        .collect()
}

async fn sync_noting<T: Transport>(session: &Session, transport: &T) -> bucketsync::SyncReport {
    let report = session.sync(transport, 4, |_| {}).await.unwrap();
    let others: Vec<_> = report
        .errors
        .iter()
        .filter(|e| e.category() != Category::Access)
        .collect();
    assert!(others.is_empty(), "{report}");
    report
}

#[tokio::test]
async fn readers_count_only_what_members_who_may_write_signed_and_nothing_after_a_revocation() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        let transport: ReqwestTransport = http();
        let family = family(&server).await;
        // Alice's laptop does not sync after sharing: the statements that let Bob and Carol in
        // travel in their grants too.
        let (emma_a, bobs, carols) = family
            .emma_shared(Role::Write, Role::Read, &transport)
            .await;
        let Family {
            homes,
            alice_key,
            alice,
            bob,
            carol,
            ..
        } = family;
        let emma_b = open_shared(&bob, &bobs, "bob phone", OpenMode::Join);
        let emma_c = open_shared(&carol, &carols, "carol phone", OpenMode::Join);
        sync(&emma_b, &transport).await;
        sync(&emma_c, &transport).await;
        emma_b.put("visit/1", "by Bob").unwrap();
        sync(&emma_b, &transport).await;

        // Alice's second device, which has never seen the vault, counts Bob's write.
        let alice_phone = open(&homes, &alice_key, "alice phone", OpenMode::Join);
        sync(&alice_phone, &transport).await;
        let emma_a2 = open_shared(
            &alice_phone,
            &alice_phone.shared_vault("emma").unwrap(),
            "alice phone",
            OpenMode::Join,
        );
        sync(&emma_a2, &transport).await;
        assert_eq!(
            emma_a2.get(b"visit/1").unwrap().as_deref(),
            Some(&b"by Bob"[..])
        );
        let members = emma_a2.members().unwrap();
        let role_of = |who: &Session| {
            let fingerprint = who.identity().unwrap().fingerprint();
            members
                .iter()
                .find(|m| m.identity.fingerprint() == fingerprint)
                .map(|m| m.standing.clone())
        };
        use bucketsync::membership::Standing;
        assert_eq!(role_of(&alice), Some(Standing::Member(Role::Owner)));
        assert_eq!(role_of(&bob), Some(Standing::Member(Role::Write)));
        assert_eq!(role_of(&carol), Some(Standing::Member(Role::Read)));

        // Carol may read; her own device refuses her writes.
        assert_eq!(emma_c.get(b"visit/1").unwrap(), None, "not synced yet");
        sync(&emma_c, &transport).await;
        assert!(emma_c.get(b"visit/1").unwrap().is_some());
        let e = emma_c.put("allergies", "none").unwrap_err();
        assert_eq!(e.category(), Category::Access, "{e}");

        // She forges anyway, with the key and her bucket access: signed by her (a device that
        // skips its own check), and unsigned (a replica that knows nothing of sharing).
        let signed_forgery = open(&carols.store, carols.key(), "carol forge", OpenMode::Join);
        signed_forgery.enter_shared(&carol, &carols).unwrap();
        signed_forgery.set_role(Role::Write);
        signed_forgery
            .put("allergies", "none (signed forgery)")
            .unwrap();
        sync_noting(&signed_forgery, &transport).await;
        let unsigned_forgery = open(&carols.store, carols.key(), "carol raw", OpenMode::Join);
        unsigned_forgery
            .put("allergies", "none (unsigned forgery)")
            .unwrap();
        unsigned_forgery.sync(&transport, 4, |_| {}).await.unwrap();
        for reader in [&emma_a, &emma_a2, &emma_b] {
            let report = sync_noting(reader, &transport).await;
            let why = refused(&report);
            assert!(
                why.iter().any(|w| w.contains("role read")),
                "{kind:?}: {report}"
            );
            assert!(why.iter().any(|w| w.contains("not signed")), "{report}");
            assert_eq!(
                reader.get(b"allergies").unwrap().as_deref(),
                Some(&b"penicillin"[..]),
                "{kind:?}: no forgery counts"
            );
            // Once refused, not fetched again.
            let again = sync_noting(reader, &transport).await;
            assert!(
                refused(&again).iter().all(|w| !w.contains("role read")),
                "{again}"
            );
        }
        // A device that bootstraps later refuses them too.
        let alice_tablet = open(&homes, &alice_key, "alice tablet", OpenMode::Join);
        sync(&alice_tablet, &transport).await;
        let emma_a3 = open_shared(
            &alice_tablet,
            &alice_tablet.shared_vault("emma").unwrap(),
            "alice tablet",
            OpenMode::Join,
        );
        sync_noting(&emma_a3, &transport).await;
        assert_eq!(
            emma_a3.get(b"allergies").unwrap().as_deref(),
            Some(&b"penicillin"[..])
        );
        assert_eq!(
            emma_a3.get(b"visit/1").unwrap().as_deref(),
            Some(&b"by Bob"[..])
        );

        // Only an owner revokes. Alice revokes Bob; before her laptop publishes it, Bob writes
        // again.
        let bob_fingerprint = bob.identity().unwrap().fingerprint().to_string();
        let e = emma_b
            .revoke(&carol.identity().unwrap().fingerprint().to_string())
            .unwrap_err();
        assert_eq!(e.category(), Category::Access, "{e}");
        // A file Alice stores before (Bob may read it: he keeps it).
        let scan: Vec<u8> = (0..700_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut source = ReadSource::new(&scan[..], Some(scan.len() as u64));
        emma_a
            .put_file("scan before", &mut source, &transport, None, 4, |_| {})
            .await
            .unwrap();
        for device in [&emma_a, &emma_a2, &emma_a3] {
            sync_noting(device, &transport).await;
        }
        let revoked = emma_a.revoke(&bob_fingerprint).unwrap();
        assert_eq!(revoked.identity.fingerprint().to_string(), bob_fingerprint);
        emma_b.put("visit/2", "by Bob, after").unwrap();
        sync_noting(&emma_b, &transport).await;
        let report = sync_noting(&emma_a, &transport).await;
        assert!(
            refused(&report).iter().any(|w| w.contains("revoked")),
            "{kind:?}: {report}"
        );
        assert_eq!(emma_a.get(b"visit/2").unwrap(), None);
        assert!(emma_a.get(b"visit/1").unwrap().is_some(), "before: kept");
        // Bob's next sync says he is out.
        let e = emma_b.sync(&transport, 4, |_| {}).await.unwrap_err();
        assert_eq!(e.category(), Category::Access, "{e}");
        // And every other reader ignores what he wrote after, with the reason.
        for reader in [&emma_a2, &emma_a3] {
            let report = sync_noting(reader, &transport).await;
            assert!(
                refused(&report).iter().any(|w| w.contains("revoked")),
                "{report}"
            );
            assert_eq!(reader.get(b"visit/2").unwrap(), None);
            assert!(reader.get(b"visit/1").unwrap().is_some());
        }
        let standing = emma_a2
            .members()
            .unwrap()
            .into_iter()
            .find(|m| m.identity.fingerprint().to_string() == bob_fingerprint)
            .unwrap()
            .standing;
        assert!(matches!(standing, Standing::Revoked(_)), "{standing:?}");

        // The revocation started a new key generation, sealed to Alice and Carol (one grant
        // each, written before the revocation was published) and the live state re-sealed
        // under it: what Alice writes now, Carol reads and Bob cannot decrypt.
        emma_a.put("visit/3", "after Bob left").unwrap();
        sync_noting(&emma_a, &transport).await;
        let report = sync_noting(&emma_c, &transport).await;
        assert_eq!(
            emma_c.get(b"visit/3").unwrap().as_deref(),
            Some(&b"after Bob left"[..]),
            "{kind:?}: {report} {:?}",
            report.errors
        );
        sync_noting(&emma_a2, &transport).await;
        assert!(emma_a2.get(b"visit/3").unwrap().is_some());
        // Bob, with the key he kept and a replica that ignores roles, reads the bucket: what
        // was written before is readable to him (he had it), nothing after.
        let bob_raw = open(&bobs.store, bobs.key(), "bob raw", OpenMode::Join);
        let report = bob_raw.sync(&transport, 4, |_| {}).await.unwrap();
        assert_eq!(bob_raw.get(b"visit/3").unwrap(), None, "{kind:?}: {report}");
        assert!(
            report
                .errors
                .iter()
                .any(|e| e.category() == Category::Corrupt),
            "{report}"
        );

        // Files too: what Alice stores now is cut, named and sealed under the new generation
        // (pack, index and chunks). Carol reads it; Bob, given the very record value, cannot:
        // his replica refuses it (no such generation), and claiming it is of generation 0
        // (layout 04 naming generation 0) opens no chunk with the key he kept.
        // The same bytes as the file stored before: not deduplicated against its chunks, which
        // Bob can read.
        let mut source = ReadSource::new(&scan[..], Some(scan.len() as u64));
        let stored = emma_a
            .put_file("scan", &mut source, &transport, None, 4, |_| {})
            .await
            .unwrap();
        assert_eq!(
            (stored.chunks_reused, stored.chunks_uploaded),
            (0, stored.chunks)
        );
        sync_noting(&emma_a, &transport).await;
        sync_noting(&emma_c, &transport).await;
        let mut read = WriteSink(Vec::new());
        assert!(emma_c
            .get_file(b"scan", &mut read, &transport, 4, |_| {})
            .await
            .unwrap());
        assert_eq!(read.0, scan, "{kind:?}");
        let value = emma_a.get(b"scan").unwrap().unwrap();
        assert_eq!(
            &value[..9],
            b"BKSF\x04\0\0\0\x01",
            "layout 04 under generation 1"
        );
        bob_raw.put("scan", value.clone()).unwrap();
        let mut sink = WriteSink(Vec::new());
        let e = bob_raw
            .get_file(b"scan", &mut sink, &transport, 4, |_| {})
            .await
            .unwrap_err();
        assert_eq!(e.category(), Category::Access, "{e}");
        let mut as_old = b"BKSF\x04\0\0\0\0".to_vec();
        as_old.extend_from_slice(&value[9..]);
        bob_raw.put("scan as generation 0", as_old).unwrap();
        let e = bob_raw
            .get_file(b"scan as generation 0", &mut sink, &transport, 4, |_| {})
            .await
            .unwrap_err();
        assert_eq!(e.category(), Category::Corrupt, "{e}");
        assert!(sink.0.is_empty(), "nothing decrypted");
        drop(server);
    }
}

/// A member who may write, with write access to the bucket, signs objects under another
/// member's device: every reader refuses them (a device's objects are signed by the member who
/// signed its manifests first), and revoking the forger pins none of the other's devices.
#[tokio::test]
async fn a_member_cannot_sign_for_another_members_device() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        let transport: ReqwestTransport = http();
        let family = family(&server).await;
        let (emma_a, bobs, carols) = family
            .emma_shared(Role::Write, Role::Write, &transport)
            .await;
        let Family { bob, carol, .. } = family;
        let emma_b = open_shared(&bob, &bobs, "bob phone", OpenMode::Join);
        let emma_c = open_shared(&carol, &carols, "carol phone", OpenMode::Join);
        sync(&emma_b, &transport).await;
        emma_c.put("note", "by Carol").unwrap();
        sync(&emma_c, &transport).await;
        sync(&emma_a, &transport).await;
        let note = |s: &Session| s.get(b"note").unwrap().map(|v| v.to_vec());
        assert_eq!(note(&emma_a).as_deref(), Some(&b"by Carol"[..]));

        // Bob's replica with Carol's device id takes her log for its own and adds to it,
        // signed by him.
        let carol_device = emma_c.device().unwrap().to_string();
        let forger = open(&bobs.store, bobs.key(), &carol_device, OpenMode::Join);
        forger.enter_shared(&bob, &bobs).unwrap();
        forger.put("note", "by Bob, as Carol").unwrap();
        let forged = sync_noting(&forger, &transport).await;
        assert!(forged.pushed > 0, "{kind:?}: {forged}");
        let report = sync_noting(&emma_a, &transport).await;
        assert!(
            refused(&report)
                .iter()
                .any(|w| w.contains("another member than the one who signed")),
            "{kind:?}: {report}"
        );
        assert_eq!(note(&emma_a).as_deref(), Some(&b"by Carol"[..]), "{kind:?}");

        // Revoking Bob pins his devices only: Carol's later writes count.
        let bob_fingerprint = bob.identity().unwrap().fingerprint().to_string();
        emma_a.revoke(&bob_fingerprint).unwrap();
        let standing = emma_a
            .members()
            .unwrap()
            .into_iter()
            .find(|m| m.identity.fingerprint().to_string() == bob_fingerprint)
            .map(|m| m.standing);
        let Some(bucketsync::membership::Standing::Revoked(pins)) = standing else {
            panic!("{kind:?}: Bob is {standing:?}");
        };
        assert!(
            pins.iter().all(|(d, _)| d.to_string() != carol_device),
            "{kind:?}: Carol's device is pinned with Bob's: {pins:?}"
        );
        sync_noting(&emma_a, &transport).await;
        sync_noting(&emma_c, &transport).await;
        // Carol's replica read back the manifest Bob wrote under its name: it is still hers.
        emma_c.enter_shared(&carol, &carols).unwrap();
        emma_c.put("note", "by Carol, after").unwrap();
        sync_noting(&emma_c, &transport).await;
        sync_noting(&emma_a, &transport).await;
        assert_eq!(
            note(&emma_a).as_deref(),
            Some(&b"by Carol, after"[..]),
            "{kind:?}"
        );
        drop(server);
    }
}

/// A replica is one person's: a state whose device signed the vault as Alice is not entered as
/// Bob (everything it wrote would be refused by the others), and stays Alice's.
#[tokio::test]
async fn a_replica_entered_as_one_person_is_not_entered_as_another() {
    let server = TestServer::start(ServerKind::SeaweedFs).await;
    let transport: ReqwestTransport = http();
    let family = family(&server).await;
    let (emma, emma_a) = family.emma(&transport).await;
    let bobs = family
        .invite(&emma_a, &family.bob, Role::Write, &transport)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emma.state");
    let open_file = || {
        let mut options = SessionOptions::new(
            &emma.store,
            emma.key(),
            StateLocation::File {
                path: &path,
                wait: false,
            },
        );
        options.device = Some("shared laptop");
        options.credentials = Some(TestServer::credentials());
        Session::open(options).unwrap()
    };
    let first = open_file();
    first.enter_shared(&family.alice, &emma).unwrap();
    first.put("note", "by Alice").unwrap();
    sync(&first, &transport).await;
    drop(first);
    let again = open_file();
    let e = again.enter_shared(&family.bob, &bobs).unwrap_err();
    assert_eq!(e.category(), Category::Config, "{e}");
    assert!(e.to_string().contains("another person"), "{e}");
    again.enter_shared(&family.alice, &emma).unwrap();
    again.put("note", "by Alice, again").unwrap();
    sync(&again, &transport).await;
    drop(server);
}
