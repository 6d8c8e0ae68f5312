//! Frozen and deleted manifests. Anyone who can write to the bucket, without the vault key, can
//! put a device's older manifest back or delete it. A manifest's sequence number catches the
//! first only on a replica that trusted a newer one. Each manifest also says how many segments
//! of every other device its writer merged, and a device merges only segments its writer's
//! manifest named: so when device E merged n segments of D, D's manifest named at least n, and
//! a listing that shows D naming fewer, or not at all, is a rollback of D's log. So is a
//! manifest this replica trusted that is no longer listed.
//!
//! A manifest read a moment later than another may be newer than it (D pushes, E merges and
//! publishes, between our two reads): before anything is reported, the manifests are listed
//! and read once more.

use std::collections::BTreeMap;

use super::SyncRun;
use crate::engine::Engine;
use crate::error::Error;
use crate::ids::DeviceId;
use crate::manifest::manifest_name;

impl Engine {
    /// Checks the manifests just read against the merged vectors and what this replica
    /// trusted; see the module documentation.
    pub(super) fn check_frozen(&mut self, run: &mut SyncRun) {
        let me = self.state.device;
        let directory = self.state.directory();
        // The most segments of each device another device says it merged, and which one.
        let mut merged: BTreeMap<DeviceId, (u64, DeviceId)> = BTreeMap::new();
        for (by, info) in &directory.devices {
            if directory.retired.contains(by) {
                continue;
            }
            for (of, n) in &info.merged {
                let most = merged.entry(*of).or_insert((0, *by));
                if *of != *by && *n > most.0 {
                    *most = (*n, *by);
                }
            }
        }
        let mut findings = Vec::new();
        let peers = self.state.peers().keys().copied();
        let mut devices = std::collections::BTreeSet::new();
        devices.extend(merged.keys().copied().chain(peers).chain([me]));
        for device in devices {
            // Writes no more (nobody fixes an older manifest of it that lands late), or its
            // manifest could not be read (reported already as what it is).
            if self.writes_no_more(device) || run.unread_manifests.contains(&device) {
                continue;
            }
            let (trusted_seq, named) = if device == me {
                let own = self.state.own();
                (own.manifest_seq, own.published_segments)
            } else {
                self.state
                    .peer(&device)
                    .map_or((0, 0), |p| (p.manifest_seq, p.segments))
            };
            let (most, by) = merged.get(&device).copied().unwrap_or((0, device));
            let listed = run.listed_devices.contains(&device);
            let finding = if !listed && most > 0 {
                Some((None, most, Some(by)))
            } else if !listed && trusted_seq > 0 {
                Some((None, named, None))
            } else if listed && most > named {
                Some((Some(named), most, Some(by)))
            } else {
                None
            };
            if let Some(finding) = finding {
                findings.push((device, finding));
            }
        }
        if findings.is_empty() {
            return;
        }
        if !run.relisted {
            // Read everything again first: the difference may be a race between two reads.
            for (device, _) in findings {
                self.forget_manifest_etag(device);
            }
            run.relist = true;
            return;
        }
        for (device, (found, known, seen_by)) in findings {
            let error = Error::Frozen {
                object: manifest_name(device),
                found,
                known,
                seen_by: seen_by.map(|d| d.to_string()),
            };
            if device != me {
                run.report.errors.push(error);
            } else if found.is_none() {
                // Ours is gone (or damaged): write it again, from this state, naming the
                // segments of ours others merged too (fetched back first, as below).
                let own = self.state.own_mut();
                own.published_segments = own.published_segments.max(known);
                own.republish = true;
                run.report.errors.push(error);
            } else {
                // Others merged segments of ours that neither this state nor our manifest in
                // the store names: a manifest of ours that named them was published and then
                // overwritten by an older one (PUTs of a run that crashed, landing late). The
                // segments are in the store (a peer read them): fetch them back, as for a
                // manifest of ours this state never saw, and publish above, so no number is
                // used twice. If one is gone after all, reading it fails as a broken log.
                let own = self.state.own_mut();
                own.published_segments = own.published_segments.max(known);
                own.republish = true;
                run.report.errors.push(error);
            }
        }
    }
}
