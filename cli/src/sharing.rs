//! `whoami`, `shared`, `share` and `accept`: the home (the vault of --store and --key-file)
//! as a person's identity and the keeper of the vaults they share (`bucketsync::io::sharing`);
//! `members` and `revoke`: who belongs to a shared vault (`--vault LABEL`).

use std::io::Read;

use bucketsync::builtin_transport::BuiltinTransport;
use bucketsync::grant::Role;
use bucketsync::home::SharedVault;
use bucketsync::membership::{Member, Standing};
use bucketsync::Error;
use serde_json::json;

use crate::args::Global;
use crate::output::{Failure, Output};
use crate::running::sync_unless_offline;
use crate::text::time;
use crate::vault;

type Outcome = std::result::Result<(), Failure>;

/// `text`, or stdin's first non-empty content when it is `-`.
fn argument_or_stdin(text: &str, what: &str) -> Result<String, Error> {
    if text != "-" {
        return Ok(text.to_owned());
    }
    let mut read = String::new();
    std::io::stdin()
        .read_to_string(&mut read)
        .map_err(|e| Error::Config(format!("cannot read the {what} from stdin: {e}")))?;
    Ok(read.trim().to_owned())
}

fn home_only(g: &Global, command: &str) -> Result<(), Error> {
    match &g.vault {
        Some(_) => Err(Error::Config(format!(
            "{command} works on the home: leave out --vault"
        ))),
        None => Ok(()),
    }
}

/// The shared vault's label: `command` works on one, never on the home.
fn shared_only<'a>(g: &'a Global, command: &str) -> Result<&'a str, Error> {
    g.vault.as_deref().ok_or_else(|| {
        Error::Config(format!(
            "{command} works on a shared vault: pass --vault LABEL (a home has no members)"
        ))
    })
}

pub fn whoami(g: &Global, out: Output) -> Outcome {
    home_only(g, "whoami")?;
    let home = vault::open_home(g)?;
    let identity = home.session.identity()?;
    let public = identity.public().to_string();
    let fingerprint = identity.fingerprint().to_string();
    out.result(
        || format!("{public}\n\nFingerprint: {fingerprint}"),
        || json!({"public": public, "fingerprint": fingerprint}),
    );
    Ok(())
}

fn describe(shared: &SharedVault) -> serde_json::Value {
    json!({
        "label": shared.label,
        "role": shared.role.as_str(),
        "store": shared.store,
        "vault": shared.key().vault_id().to_string(),
        "from": shared.from.map(|f| f.to_string()),
        "since": shared.since.0,
    })
}

pub async fn list(g: &Global, out: Output) -> Outcome {
    home_only(g, "shared")?;
    let home = vault::open_home(g)?;
    sync_unless_offline(g, &home, out).await?;
    let shared = home.session.shared()?;
    let text = || {
        if shared.is_empty() {
            return "No shared vaults: make one with `bucketsync shared create LABEL`, or accept an invitation.".into();
        }
        let lines: Vec<String> = shared
            .iter()
            .map(|s| {
                let from = match &s.from {
                    Some(f) => format!("from {f}"),
                    None => "made here".into(),
                };
                format!("{}\t{}\t{from}\t{}", s.label, s.role, s.store)
            })
            .collect();
        lines.join("\n")
    };
    out.result(text, || {
        json!(shared.iter().map(describe).collect::<Vec<_>>())
    });
    Ok(())
}

pub async fn create(g: &Global, out: Output, label: &str, store: Option<&str>) -> Outcome {
    home_only(g, "shared create")?;
    let home = vault::open_home(g)?;
    // Another device of the home may have made one under this label already.
    sync_unless_offline(g, &home, out).await?;
    let store = store.unwrap_or(vault::store_url(g)?);
    let shared = home.session.create_shared(store, label)?;
    sync_unless_offline(g, &home, out).await?;
    let made = vault::open_shared(g, &home, label)?;
    sync_unless_offline(g, &made, out).await?;
    out.result(
        || {
            format!(
                "Made the shared vault {label:?} in {}. Use it with --vault {label}; grant it with `bucketsync share {label} PUBLIC`.",
                shared.store
            )
        },
        || describe(&shared),
    );
    Ok(())
}

pub async fn share(
    g: &Global,
    out: Output,
    label: &str,
    public: &str,
    role: Role,
    signer: Option<&str>,
) -> Outcome {
    home_only(g, "share")?;
    let public = argument_or_stdin(public, "public identity")?;
    let recipient = bucketsync::identity::PublicIdentity::parse(&public)?;
    let home = vault::open_home(g)?;
    let vault = vault::open_shared(g, &home, label)?;
    let invitation = vault
        .session
        .share_through(&home.session, &public, role, signer, &vault.transport)
        .await?;
    let text = invitation.to_string();
    let fingerprint = recipient.fingerprint().to_string();
    let vault_id = invitation.vault.to_string();
    out.result(
        || {
            let through = match signer {
                Some(url) => format!(
                    "\nThey reach the store through the signer at {url}: give them a member \
                     token for the vault {vault_id} too (a line `TOKEN {vault_id} {}` in the \
                     signer's --member-tokens file). The invitation does not sign that URL: \
                     send it over a channel you trust, and tell them your fingerprint.",
                    if role == Role::Read { "read" } else { "write" }
                ),
                None => String::new(),
            };
            format!(
                "{text}\n\nSend this invitation to the person whose fingerprint is {fingerprint} \
                 (compare it with them). It grants {label:?} with the role {role}.{through}"
            )
        },
        || {
            json!({"invitation": text, "to": fingerprint, "label": label, "role": role.as_str(),
                "vault": vault_id, "signer": signer})
        },
    );
    Ok(())
}

pub async fn accept(g: &Global, out: Output, invitation: &str, from: Option<&str>) -> Outcome {
    home_only(g, "accept")?;
    let invitation = argument_or_stdin(invitation, "invitation")?;
    let home = vault::open_home(g)?;
    // The grant is read in the invitation's store, which may be another than the home's (a
    // file:// home, an s3:// vault), signed as the core's rule says (the home's credentials
    // only on the home's own service; --vault-profile's elsewhere).
    let shared = home
        .session
        .accept_shared(
            &vault::reach(&home),
            &invitation,
            from,
            vault::given(g)?,
            |reach, store| BuiltinTransport::for_store_with(store, reach.http),
        )
        .await?;
    sync_unless_offline(g, &home, out).await?;
    let opened = vault::open_shared(g, &home, &shared.label)?;
    sync_unless_offline(g, &opened, out).await?;
    let label = shared.label.clone();
    out.result(
        || {
            format!(
                "Accepted {label:?} ({}) from {}. Use it with --vault {label:?}.",
                shared.role,
                shared.from.map(|f| f.to_string()).unwrap_or_default()
            )
        },
        || describe(&shared),
    );
    Ok(())
}

/// A member's role, or "revoked".
fn role_name(member: &Member) -> &'static str {
    match &member.standing {
        Standing::Member(role) => role.as_str(),
        Standing::Revoked(_) => "revoked",
    }
}

fn member_json(member: &Member) -> serde_json::Value {
    let pins: Vec<serde_json::Value> = match &member.standing {
        Standing::Member(_) => Vec::new(),
        Standing::Revoked(pins) => pins
            .iter()
            .map(|(device, segments)| json!([device.to_string(), segments]))
            .collect(),
    };
    json!({
        "fingerprint": member.identity.fingerprint().to_string(),
        "public": member.identity.to_string(),
        "role": role_name(member),
        "since": member.since.0,
        "granted_by": member.by.to_string(),
        "may_write": member.may_write(),
        "pins": pins,
    })
}

pub async fn members(g: &Global, out: Output) -> Outcome {
    let label = shared_only(g, "members")?;
    let vault = vault::open_existing(g)?;
    // Statements reach this device in the manifests of the others: the list is as current as
    // the last sync.
    sync_unless_offline(g, &vault, out).await?;
    let members = vault.session.members()?;
    let text = || {
        if members.is_empty() {
            return format!(
                "No member statement of {label:?} read yet: sync it (leave out --offline)."
            );
        }
        let mut text = format!(
            "{:<19}  {:<7}  {:<20}  GRANTED BY\n",
            "FINGERPRINT", "ROLE", "SINCE"
        );
        for m in &members {
            text.push_str(&format!(
                "{:<19}  {:<7}  {:<20}  {}\n",
                m.identity.fingerprint().to_string(),
                role_name(m),
                time(m.since.0),
                m.by,
            ));
        }
        text
    };
    out.result(text, || {
        json!(members.iter().map(member_json).collect::<Vec<_>>())
    });
    Ok(())
}

pub async fn revoke(g: &Global, out: Output, fingerprint: &str) -> Outcome {
    let label = shared_only(g, "revoke")?;
    let vault = vault::open_existing(g)?;
    // What their devices wrote until now is merged first, so that it counts: the revocation
    // pins their logs at what this device has merged.
    sync_unless_offline(g, &vault, out).await?;
    let member = vault.session.revoke(fingerprint)?;
    // Seals the new key generation to every member left, then publishes the revocation.
    let report = sync_unless_offline(g, &vault, out).await?;
    let who = member.identity.fingerprint().to_string();
    let was = role_name(&member);
    out.result(
        || {
            let published = match &report {
                Some(_) => " and published it",
                None => "; the next sync publishes it and seals a new key to every member left",
            };
            format!(
                "Revoked {who} (was {was}) from {label:?}{published}.\n\
                 They keep what they read until now; records and files written from now on are \
                 sealed under a new key they do not get. Revoke their bucket credentials or \
                 signer token too."
            )
        },
        || json!({"revoked": who, "was": was, "label": label, "pushed": report.is_some()}),
    );
    Ok(())
}
