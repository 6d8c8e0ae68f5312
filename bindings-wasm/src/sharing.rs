//! Sharing with another person: the `identity` / `shared` / `createShared` / `openShared` /
//! `share` / `accept` / `members` / `revoke` exports over the core's (`bucketsync::io::sharing`).
//! The vault they are called on is the person's home, except `share`, `members` and `revoke`,
//! which are called on the shared vault. The JS layer (`js/index.js`) loads and saves each
//! vault's state and builds each `send` of the pieces the core chose (`reach`).

use bucketsync::grant::Role;
use bucketsync::io::reach::Given;
use bucketsync::io::shared_vaults::{OpenedShared, SharedOptions};
use bucketsync::io::sharing;
use bucketsync::membership::{Member, Standing};
use bucketsync::session::Session;
use js_sys::{Array, Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::reach::{self, JsReach};
use crate::{js_error, set, Opening, Vault};

impl Vault {
    /// `access` for a vault opened through a home: a shared vault is never a home (its
    /// members would all hold the identity, and the keys kept in it).
    fn as_home(&self) -> Result<(), JsValue> {
        sharing::as_home(self.home.as_ref()).map_err(|e| js_error(&e))
    }

    /// A shared vault opened through this home by `open` (a call of the core's, given this
    /// home's session and reach, the vault's own options and what the app gives for it).
    fn through_home(
        &self,
        mut opening: Opening,
        open: impl FnOnce(
            &Session,
            &JsReach,
            SharedOptions<'_>,
            Given<JsValue, JsValue>,
        ) -> bucketsync::Result<OpenedShared<JsValue, JsValue>>,
    ) -> Result<Vault, JsValue> {
        let given = reach::given(&opening.connection)?;
        let options = opening.shared_options()?;
        let opened = open(&self.session, &self.reach, options, given).map_err(|e| js_error(&e))?;
        Vault::new(
            opened.vault,
            opened.reach,
            &opening.make_send,
            Some(self.session.clone()),
        )
    }
}

/// A member as JS sees it: `{fingerprint, public, role ("read", "write", "owner" or
/// "revoked"), since (ms since the epoch), grantedBy (the fingerprint of who said so), mayWrite,
/// pins (a revoked member's `[device id, segments]`: how many of each device's segments still
/// count; empty for a member)}`.
fn member_object(member: &Member) -> Object {
    let js = Object::new();
    let identity = &member.identity;
    set(&js, "fingerprint", identity.fingerprint().to_string());
    set(&js, "public", identity.to_string());
    let pins = Array::new();
    let role = match &member.standing {
        Standing::Member(role) => role.as_str(),
        Standing::Revoked(pinned) => {
            for (device, upto) in pinned {
                pins.push(&Array::of2(
                    &device.to_string().into(),
                    &(*upto as f64).into(),
                ));
            }
            "revoked"
        }
    };
    set(&js, "role", role);
    set(&js, "since", member.since.0 as f64);
    set(&js, "grantedBy", member.by.to_string());
    set(&js, "mayWrite", member.may_write());
    set(&js, "pins", pins);
    js
}

#[wasm_bindgen]
impl Vault {
    /// The identity of the person whose home this vault is: `{public, fingerprint}` (the text
    /// to give a person who shares with them, and its short form to compare aloud).
    pub fn identity(&self) -> Result<Object, JsValue> {
        self.as_home()?;
        let identity = self.session.identity().map_err(|e| js_error(&e))?;
        let js = Object::new();
        set(&js, "public", identity.public().to_string());
        set(&js, "fingerprint", identity.fingerprint().to_string());
        Ok(js)
    }

    /// The vaults this home made or accepted: `{label, store, role, grantedBy (a fingerprint,
    /// or null for one this person made), since (ms since the epoch)}`.
    pub fn shared(&self) -> Result<Array, JsValue> {
        self.as_home()?;
        let out = Array::new();
        for shared in self.session.shared().map_err(|e| js_error(&e))? {
            let js = Object::new();
            set(&js, "label", shared.label);
            set(&js, "store", shared.store);
            set(&js, "role", shared.role.as_str());
            match shared.from {
                Some(from) => set(&js, "grantedBy", from.to_string()),
                None => set(&js, "grantedBy", JsValue::NULL),
            }
            set(&js, "since", shared.since.0 as f64);
            out.push(&js);
        }
        Ok(out)
    }

    /// Makes a new vault to share, in `store`, kept in this home as `label` with the role
    /// owner, and opens this device's replica of it (its first sync creates it), with
    /// `opening` and `make_send` as for `open`: the core decides what it takes of this home's
    /// connection. The vault remembers this home, for `share`.
    #[wasm_bindgen(js_name = createShared)]
    pub fn create_shared(
        &self,
        store: &str,
        label: &str,
        opening: JsValue,
        make_send: Function,
    ) -> Result<Vault, JsValue> {
        self.through_home(
            Opening::from_js(&opening, make_send)?,
            |home, reach, options, given| {
                home.create_shared_vault(reach, store, label, options, given)
            },
        )
    }

    /// Opens this device's replica of the vault this home keeps as `label`, with the role the
    /// home has in it; arguments as for `createShared`.
    #[wasm_bindgen(js_name = openShared)]
    pub fn open_shared(
        &self,
        label: &str,
        opening: JsValue,
        make_send: Function,
    ) -> Result<Vault, JsValue> {
        self.through_home(
            Opening::from_js(&opening, make_send)?,
            |home, reach, options, given| home.open_shared_vault(reach, label, options, given),
        )
    }

    /// Grants this vault to the person whose public identity is `recipient`, with `role`
    /// (`"read"`, `"write"` or `"owner"`; by default `"read"`): one PUT through this vault's transport. Resolves to
    /// the invitation to send them, naming `signer_url` (a signer service's `/sign` URL) when
    /// given. Rejects with `access` when this vault was not opened through its home, or the
    /// home does not own it; with `config` for a bad signer URL, before any request.
    pub fn share(
        &self,
        recipient: String,
        role: Option<String>,
        signer_url: Option<String>,
    ) -> Result<Promise, JsValue> {
        let role = Role::parse_or_default(role.as_deref()).map_err(|e| js_error(&e))?;
        let home = sharing::home_of(self.home.as_ref())
            .map_err(|e| js_error(&e))?
            .clone();
        let session = self.session.clone();
        let transport = self.transport.clone();
        Ok(future_to_promise(async move {
            session
                .share_through(&home, &recipient, role, signer_url.as_deref(), &*transport)
                .await
                .map(|invitation| invitation.to_string().into())
                .map_err(|e| js_error(&e))
        }))
    }

    /// Accepts an invitation with this home's identity: reads its grant (one GET in the
    /// invitation's store, through the transport the core decides on: the home's credentials
    /// and signer only on the home's own service), keeps the vault in this home and opens it.
    /// Resolves to the vault. `granted_by`: the granter's fingerprint as told out of band; an
    /// invitation from anyone else is refused (`access`) before any request. Rejects with
    /// `access` when the grant is sealed to another identity, `auth` (saying which credentials
    /// to pass) when its store refuses the request. Other arguments as for `createShared`.
    pub fn accept(
        &self,
        invitation: String,
        granted_by: Option<String>,
        opening: JsValue,
        make_send: Function,
    ) -> Result<Promise, JsValue> {
        let mut opening = Opening::from_js(&opening, make_send)?;
        let given = reach::given(&opening.connection)?;
        let home = self.session.clone();
        let home_reach = self.reach.clone();
        let make_send = opening.make_send.clone();
        Ok(future_to_promise(async move {
            let options = opening.shared_options()?;
            let opened = home
                .accept_shared_vault(
                    &home_reach,
                    &invitation,
                    granted_by.as_deref(),
                    options,
                    given,
                    |reach, _| {
                        reach::transport(&make_send, reach)
                            .map_err(|e| bucketsync::Error::Config(crate::js_message(&e)))
                    },
                )
                .await
                .map_err(|e| js_error(&e))?;
            let vault = Vault::new(opened.vault, opened.reach, &make_send, Some(home))?;
            Ok(vault.into())
        }))
    }

    /// The people of this shared vault as the statements read so far say (`member_object`
    /// each); empty when the vault is not shared (not opened through its home).
    pub fn members(&self) -> Result<Array, JsValue> {
        let out = Array::new();
        for member in self.session.members().map_err(|e| js_error(&e))? {
            out.push(&member_object(&member));
        }
        Ok(out)
    }

    /// Revokes the member whose fingerprint is `who` (as a person types it): no request, the
    /// next sync publishes it. Returns the member as they were. `access` when this person is
    /// not an owner (or the vault is not shared); `config` when no member has that fingerprint,
    /// or it is the founder's or one's own.
    pub fn revoke(&self, who: &str) -> Result<Object, JsValue> {
        self.session
            .revoke(who)
            .map(|member| member_object(&member))
            .map_err(|e| js_error(&e))
    }
}

/// What an invitation says, without any request: `{store, vaultId (32 hex digits), grantedBy
/// (the granter's fingerprint, as the invitation claims), signer (a signer service's URL, or
/// null)}`.
#[wasm_bindgen(js_name = invitationInfo)]
pub fn invitation_info(text: &str) -> Result<Object, JsValue> {
    let invitation = bucketsync::grant::Invitation::parse(text).map_err(|e| js_error(&e))?;
    let js = Object::new();
    set(&js, "store", invitation.store);
    set(&js, "vaultId", invitation.vault.to_string());
    set(&js, "grantedBy", invitation.from.to_string());
    set(
        &js,
        "signer",
        invitation.signer.map_or(JsValue::NULL, JsValue::from),
    );
    Ok(js)
}
