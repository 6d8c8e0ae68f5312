//! The engine's part in sharing: the identity this vault gives as a home, and the requests
//! that write and read grants (sealed with the engine's entropy, signed with its signer).

use super::Engine;
use crate::error::Result;
use crate::grant::{self, Grant, Invitation};
use crate::http::{Method, Request, RequestKind};
use crate::identity::{Identity, PublicIdentity};
use crate::ids::{RequestId, Timestamp};

impl Engine {
    /// The identity of the person whose home this vault is (derived from its key: every
    /// device of the home has the same).
    pub fn identity(&self) -> Identity {
        Identity::from_seeds(&self.identity_seeds)
    }

    /// Seals `grant` (of this vault) to `recipient`, signed by `granter`, and gives the signed
    /// `PUT` that creates its object (`If-None-Match: *`) with the grant's invitation, whose
    /// store is `store_url`.
    ///
    /// # Errors
    /// `Config` when `grant` is not of this vault; whatever the signer fails with.
    pub fn grant_request(
        &mut self,
        grant: &Grant,
        granter: &Identity,
        recipient: &PublicIdentity,
        store_url: &str,
        now: Timestamp,
    ) -> Result<(Request, Invitation)> {
        if grant.vault != self.vault {
            return Err(crate::Error::Config(
                "a grant of another vault than this one".into(),
            ));
        }
        let id: [u8; 16] = self.entropy.array();
        let object = grant::seal(grant, &id, granter, recipient, &mut self.entropy)?;
        let mut request = Request {
            id: RequestId(0),
            kind: RequestKind::PutGrant,
            method: Method::Put,
            url: self
                .store
                .object_url(&format!("{}{}", self.folder, grant::grant_name(&id))),
            headers: vec![("if-none-match".into(), "*".into())],
            body: object.into(),
        };
        self.sign(&mut request, now)?;
        let invitation = Invitation {
            store: store_url.to_owned(),
            vault: self.vault,
            grant: id,
            from: granter.fingerprint(),
            signer: None,
        };
        Ok((request, invitation))
    }
}
