//! Files in the replica: the transfers that store and read them start here, with the keys
//! and what the replica knows of the chunks already in the vault.

use std::collections::{HashMap, HashSet};

use super::Engine;
use crate::crypto::SecretKey;
use crate::entropy::Entropy;
use crate::error::Result;
use crate::file::{Body, FileInfo, FileValue, INLINE_MAX};
use crate::http::Request;
use crate::ids::Timestamp;
use crate::key::Purpose;
use crate::transfer::{
    Download, DownloadMany, FileKeys, PackNote, Ranges, ResumablePack, Stored, Upload,
    DEFAULT_PACK_SIZE,
};

impl Engine {
    /// The chunk, chunk-id, chunker and file-hash keys of key generation `generation`, when
    /// this replica holds it: they derive from that generation's key as generation 0's derive
    /// from the vault key.
    pub(crate) fn file_keys(&self, generation: u32) -> Option<[SecretKey; 4]> {
        if generation == 0 {
            return Some(self.file_keys.clone());
        }
        let key = self.later_key(generation)?;
        Some([
            key.subkey(Purpose::Chunk),
            key.subkey(Purpose::ChunkId),
            key.subkey(Purpose::Chunker),
            key.subkey(Purpose::FileHash),
        ])
    }

    /// The file keys of `generation` for a transfer.
    ///
    /// # Errors
    /// `Access` when this replica does not hold that generation.
    fn transfer_keys(&self, generation: u32, what: &str) -> Result<FileKeys> {
        let [chunk, chunk_id, chunker, file_hash] = self
            .file_keys(generation)
            .ok_or_else(|| super::sharing::not_given(what, generation))?;
        Ok(FileKeys {
            vault: self.vault,
            generation,
            chunk,
            chunk_id,
            chunker,
            file_hash,
            compress: self.compression,
            store: self.store.clone(),
            folder: self.folder.clone(),
            alive: self.transfers.clone(),
        })
    }

    /// A keyed hasher that gives bytes the content hash ([`FileInfo::content_hash`]) they
    /// would have as the file `key` whose record holds `value` (under that file's key
    /// generation), and the hash the record holds: local bytes compared with the vault's
    /// version without reading it.
    ///
    /// # Errors
    /// `Config` when the value is not a file; `Corrupt` when it does not decode; when the
    /// file's key generation is not given.
    #[cfg(feature = "backup")] // two-way folder sync's
    pub(crate) fn content_hasher(
        &self,
        key: &[u8],
        value: &[u8],
    ) -> Result<(blake3::Hasher, [u8; 32])> {
        let file = FileValue::decode(key, value)?;
        let keys = self.transfer_keys(file.generation, "comparing a file")?;
        Ok((blake3::Hasher::new_keyed(&keys.file_hash.0), file.hash))
    }

    /// Our packs that are being deleted, or may be at any moment: those this process deleted
    /// or is deleting, and those a confirmed look of pack collection saved in the state holds
    /// (their DELETEs may be due, or on their way from a process that died before they were
    /// answered). No upload takes chunks from them.
    fn doomed_packs(&self) -> HashSet<crate::pack::PackName> {
        let mut doomed = self.collected_packs.clone();
        if let Some(look) = &self.state.directory().pack_collection {
            if look.confirmed_ms.is_some() {
                let names = look.packs.iter().map(|&pack| crate::pack::PackName {
                    device: look.device.0,
                    pack,
                });
                doomed.extend(names);
            }
        }
        doomed
    }

    /// Starts storing a file (see [`Upload`]) of `size` bytes if known, in packs of about
    /// `pack_size` bytes (`None`: [`DEFAULT_PACK_SIZE`]). Chunks that a live file of the
    /// replica already references are not sent again, nor those an interrupted upload of this
    /// device stored: the first upload of a file that does not fit in its record lists this
    /// device's packs to find them, and completes the packs that went up in parts and were not
    /// completed. While it runs, hand it to [`Engine::note_upload`] now and then (and save the
    /// state), so that a process killed half-way leaves what it stored of its packs in parts
    /// to the next. When the upload ends, store the value it gives under the file's key with
    /// [`Engine::put`], and hand the upload to [`Engine::end_upload`] (also when it failed).
    ///
    /// `now` is the wall time. A replica out of touch for longer than the grace period (it
    /// starts over at its next sync) references no chunk of the files its records name: its
    /// records may be older than what pack collection deleted since (a state restored from a
    /// backup taken while a file was live, after that file was deleted and its packs
    /// collected), so those chunks are sent again.
    pub fn begin_upload(
        &mut self,
        size: Option<u64>,
        pack_size: Option<usize>,
        now: Timestamp,
    ) -> Upload {
        // Files are sealed under the newest key generation held, as segments are.
        let generation = self.current_generation();
        let keys = self
            .transfer_keys(generation, "a new file")
            .expect("the newest generation held is held");
        let mut known = HashMap::new();
        let mut referenced = HashSet::new();
        let records_current = !self.silent_too_long(now);
        for (_, record) in self.state.records().iter().filter(|_| records_current) {
            let Some(value) = record.value.as_deref().filter(|v| FileValue::is_file(v)) else {
                continue;
            };
            let Ok(file) = FileValue::decode(b"", value) else {
                continue;
            };
            if let Body::Chunks { packs, chunks } = &file.body {
                referenced.extend(packs.iter().copied());
                // Only chunks sealed as this build seals them (a file value has one chunk
                // version for all its chunks), under the generation this file will be, are
                // referenced by a new file: an older chunk is stored again, once.
                if file.chunk_version != crate::crypto::PACK_VERSION
                    || file.generation != generation
                {
                    continue;
                }
                for c in chunks {
                    // Where the chunk is now, if one of our repacks moved it.
                    let (pack, offset) = self.resolve(packs[c.pack as usize], c.offset);
                    known.entry(c.id).or_insert(Stored {
                        pack,
                        offset,
                        sealed_len: c.sealed_len,
                        len: c.len,
                    });
                }
            }
        }
        let mut resume = Vec::new();
        let discover = match &self.spare_chunks {
            Some((of, spare)) => {
                let doomed = self.doomed_packs();
                for (id, stored) in spare.iter().filter(|_| *of == generation) {
                    if !doomed.contains(&stored.pack) {
                        known.entry(*id).or_insert(*stored);
                    }
                }
                None
            }
            None if size.is_some_and(|s| s <= INLINE_MAX) => None,
            None => {
                // Once per process: an upload started meanwhile (another thread) must not list
                // again, or it would take this one's multipart uploads for a killed process's
                // and abort them.
                self.spare_chunks = Some((generation, HashMap::new()));
                // Packs being deleted are not read for chunks to reuse either.
                referenced.extend(self.doomed_packs());
                // Packs in parts noted before this process began are an interrupted upload's.
                // Those an earlier release left hold chunks of an older version, which a new
                // file cannot reference: forgotten, their uploads aborted by the listing.
                let older = |p: &ResumablePack| crate::pack::sealed_before_codecs(&p.entries);
                if self.state.directory().resumable_packs.iter().any(older) {
                    let packs = &mut self.state.directory_mut().resumable_packs;
                    packs.retain(|p| !older(p));
                }
                resume = self.state.directory().resumable_packs.clone();
                Some(referenced)
            }
        };
        let entropy = Entropy::from_seed(self.entropy.array());
        Upload::new(
            keys,
            self.state.device,
            entropy,
            known,
            discover,
            resume,
            pack_size.unwrap_or(DEFAULT_PACK_SIZE),
            self.retry,
        )
    }

    /// Takes note of the chunks an upload found or stored in packs of this device that no file
    /// referenced when it began, so that the next upload of this process references them too
    /// (never chunks of another device's packs, which that device may delete), and of its
    /// packs in parts as [`Engine::note_upload`] does (whose answer it gives).
    pub fn end_upload(&mut self, upload: &mut Upload) -> bool {
        let changed = self.note_upload(upload);
        let generation = self.current_generation();
        if upload.generation() != generation {
            // Sealed under a generation we no longer write with.
            return changed;
        }
        let (of, spare) = self
            .spare_chunks
            .get_or_insert_with(|| (generation, HashMap::new()));
        if *of != generation {
            (*of, *spare) = (generation, HashMap::new());
        }
        // Only chunks in our own packs: another device deletes its packs once no record
        // references them, which it cannot know a chunk kept here does (the next upload finds
        // the chunks of live files again in the records).
        let me = self.state.device.0;
        for (id, stored) in upload.stored_chunks().filter(|(_, s)| s.pack.device == me) {
            spare.entry(*id).or_insert(*stored);
        }
        changed
    }

    /// Takes note of how much of its packs in parts `upload` stored (kept in the state), and of
    /// those that are whole now (forgotten); `true` when the state changed.
    pub fn note_upload(&mut self, upload: &mut Upload) -> bool {
        let notes = upload.take_notes();
        if notes.is_empty() {
            return false;
        }
        // Packs sealed under an older generation than the one we write with are not completed
        // by a later upload (see `hold_generation`): forgotten, their uploads aborted later.
        let current = upload.generation() == self.current_generation();
        let packs = &mut self.state.directory_mut().resumable_packs;
        for note in notes {
            match note {
                PackNote::Stored(pack) if current => {
                    match packs.iter_mut().find(|p| p.name == pack.name) {
                        Some(noted) => *noted = pack,
                        None => packs.push(pack),
                    }
                }
                PackNote::Stored(ResumablePack { name, .. }) | PackNote::Gone(name) => {
                    packs.retain(|p| p.name != name)
                }
            }
        }
        true
    }

    /// Starts reading the file stored under `key` (see [`Download`]); `None` when the key is
    /// absent or deleted.
    ///
    /// # Errors
    /// `Config` when the key holds a record that is not a file; `Corrupt` when its value is
    /// a damaged file value.
    pub fn begin_download(&self, key: &[u8]) -> Result<Option<Download>> {
        self.download(key, None)
    }

    /// Starts reading the bytes `range` of the file stored under `key` (clamped to its size):
    /// only the chunks that overlap it are fetched, each checked against its id (the whole
    /// file's hash is not, as the whole is not read). `None` when the key is absent or deleted.
    ///
    /// # Errors
    /// As [`Engine::begin_download`].
    pub fn begin_download_range(
        &self,
        key: &[u8],
        range: core::ops::Range<u64>,
    ) -> Result<Option<Download>> {
        self.download(key, Some(range))
    }

    fn download(
        &self,
        key: &[u8],
        range: Option<core::ops::Range<u64>>,
    ) -> Result<Option<Download>> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        self.begin_download_value(key, value, range).map(Some)
    }

    /// Starts reading (the bytes `range` of) the file whose record value is `value`, as
    /// stored under `key` when it was read: a reader that opened a file keeps reading that
    /// version, whatever a sync brings in meanwhile.
    ///
    /// # Errors
    /// As [`Engine::begin_download`].
    pub fn begin_download_value(
        &self,
        key: &[u8],
        value: &[u8],
        range: Option<core::ops::Range<u64>>,
    ) -> Result<Download> {
        let file = FileValue::decode(key, value)?;
        let object = format!("file {:?}", String::from_utf8_lossy(key));
        Ok(Download::new(
            self.transfer_keys(file.generation, &object)?,
            file,
            object,
            self.retry,
            range,
            Ranges::ONE_FILE,
        ))
    }

    /// Starts reading many files as one (see [`DownloadMany`]): `files` are (key, record
    /// value) pairs. Files of chunks are grouped by key generation and chunk version, one
    /// [`DownloadMany`] each, with the places of its files among those given; a file that
    /// lives in its record, or whose value cannot be read, is left to be read alone (its place
    /// in the second list).
    pub fn begin_download_many(
        &self,
        files: &[(&[u8], &[u8])],
    ) -> (Vec<(DownloadMany, Vec<usize>)>, Vec<usize>) {
        let mut groups: std::collections::BTreeMap<(u32, u8), Vec<(usize, FileValue)>> =
            std::collections::BTreeMap::new();
        let mut alone = Vec::new();
        for (i, (key, value)) in files.iter().enumerate() {
            match FileValue::decode(key, value) {
                Ok(file) if matches!(file.body, Body::Chunks { .. }) => groups
                    .entry((file.generation, file.chunk_version))
                    .or_default()
                    .push((i, file)),
                _ => alone.push(i),
            }
        }
        let mut out = Vec::new();
        for ((generation, _), members) in groups {
            let places: Vec<usize> = members.iter().map(|(i, _)| *i).collect();
            let named: Vec<(FileValue, String)> = members
                .into_iter()
                .map(|(i, file)| {
                    let object = format!("file {:?}", String::from_utf8_lossy(files[i].0));
                    (file, object)
                })
                .collect();
            let many = self
                .transfer_keys(generation, "files")
                .and_then(|keys| DownloadMany::new(keys, named, self.retry));
            match many {
                Ok(many) => out.push((many, places)),
                Err(_) => alone.extend(places),
            }
        }
        (out, alone)
    }

    /// What the file under `key` is, without fetching it; `None` when the key is absent or
    /// deleted.
    ///
    /// # Errors
    /// As [`Engine::begin_download`].
    pub fn file_info(&self, key: &[u8]) -> Result<Option<FileInfo>> {
        self.get(key)
            .map(|value| FileValue::decode(key, value).map(|f| FileInfo::from(&f)))
            .transpose()
    }

    /// Signs a request of a transfer as the sync's are signed (no-op without a signer),
    /// adding first what the store's settings ask of a write (`Store::add_write_headers`).
    ///
    /// # Errors
    /// Whatever the signer fails with.
    pub fn sign(&self, request: &mut Request, now: Timestamp) -> Result<()> {
        self.store.add_write_headers(request);
        match &self.signer {
            Some(signer) => {
                let signing_time = Timestamp(now.0.saturating_add_signed(self.clock_offset_ms));
                signer.sign(request, signing_time)
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::GenerationKey;
    use crate::ids::DeviceId;
    use crate::ids::Timestamp;
    use crate::key::VaultKey;
    use crate::pack::PackName;
    use crate::store::Store;

    /// Once a replica holds a newer key generation, files go under it, and nothing of an older
    /// generation's uploads is carried on: packs in parts are no longer completed, and what an
    /// upload begun before stored is not offered to later ones.
    #[test]
    fn a_newer_key_generation_leaves_the_older_ones_uploads_behind() {
        let key = VaultKey::from_bytes([1; 32]);
        let store = Store::parse("file:///vault").unwrap();
        let mut engine = Engine::new(&key, store, DeviceId([1; 16]), Entropy::from_seed([2; 32]));
        let in_parts = ResumablePack {
            name: PackName {
                device: [1; 16],
                pack: [2; 16],
            },
            upload_id: "u".into(),
            parts: vec!["\"e1\"".into()],
            entries: Vec::new(),
            whole: false,
        };
        engine
            .state
            .directory_mut()
            .resumable_packs
            .push(in_parts.clone());
        let mut before = engine.begin_upload(Some(5), None, Timestamp(0));
        assert_eq!(before.generation(), 0);
        // Generation 1 arrives (a grant after a revocation).
        engine.add_keys(&[GenerationKey {
            generation: 1,
            key: VaultKey::from_bytes([3; 32]),
        }]);
        assert!(engine.state.directory().resumable_packs.is_empty());
        let mut after = engine.begin_upload(Some(5), None, Timestamp(0));
        assert_eq!(after.generation(), 1);
        for upload in [&mut before, &mut after] {
            upload.write(b"hello").unwrap();
            upload.finish().unwrap();
        }
        let (old, _) = before.poll_outcome().unwrap().unwrap();
        let (new, _) = after.poll_outcome().unwrap().unwrap();
        // Layout 4 (format version 10): the generation always follows the layout byte.
        assert_eq!(&old[..9], b"BKSF\x04\0\0\0\0");
        assert_eq!(&new[..9], b"BKSF\x04\0\0\0\x01");
        assert_eq!(FileValue::decode(b"f", &new).unwrap().generation, 1);
        // The older upload's chunks are not kept for later uploads; the newer one's are.
        engine.end_upload(&mut before);
        assert!(engine.spare_chunks.is_none());
        engine.end_upload(&mut after);
        assert!(matches!(engine.spare_chunks, Some((1, _))));
    }

    /// Bytes that no two files share and that deflate nowhere: `len` of them from `seed`.
    fn noise(seed: u8, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        blake3::Hasher::new_keyed(&[seed; 32])
            .finalize_xof()
            .fill(&mut out);
        out
    }

    /// An engine on a folder bucket whose first upload does not list packs.
    fn quiet_engine() -> Engine {
        let key = VaultKey::from_bytes([1; 32]);
        let store = Store::parse("file:///vault").unwrap();
        let mut engine = Engine::new(&key, store, DeviceId([1; 16]), Entropy::from_seed([2; 32]));
        engine.spare_chunks = Some((0, HashMap::new()));
        engine
    }

    /// Ends `upload`'s input and answers its requests until none is left, keeping the body
    /// of each in `stored` by URL; the values of its files, in the order they ended.
    fn finish_upload(
        upload: &mut Upload,
        stored: &mut HashMap<String, Vec<u8>>,
    ) -> Vec<(u64, Vec<u8>, crate::transfer::FileReport)> {
        let now = Timestamp(0);
        upload.end_input().unwrap();
        while let Some(request) = upload.poll_request(now) {
            stored.insert(request.url.clone(), request.body.to_vec());
            upload.handle_response(request.id, Ok(ok()), now);
        }
        let values = std::iter::from_fn(|| upload.poll_file()).collect();
        assert!(matches!(upload.poll_end(), Some(Ok(_))));
        values
    }

    /// The answer to a ranged GET of an object in `stored`.
    fn ranged(
        stored: &HashMap<String, Vec<u8>>,
        request: &crate::http::Request,
    ) -> crate::http::Response {
        let range = request.header("range").expect("a ranged GET");
        let (from, to) = range["bytes=".len()..].split_once('-').unwrap();
        let (from, to): (usize, usize) = (from.parse().unwrap(), to.parse().unwrap());
        crate::http::Response {
            status: 206,
            headers: Vec::new(),
            body: stored[&request.url][from..=to].to_vec(),
        }
    }

    fn ok() -> crate::http::Response {
        crate::http::Response {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The packs a file value names.
    fn packs_of(value: &[u8]) -> Vec<PackName> {
        match FileValue::decode(b"f", value).unwrap().body {
            Body::Chunks { packs, .. } => packs,
            Body::Inline(_) => Vec::new(),
        }
    }

    /// Small files of one upload share its packs, and a file's value is handed out only once
    /// every pack holding any of its chunks is stored: one whose pack failed never is.
    #[test]
    fn files_of_one_upload_share_packs_and_wait_for_them() {
        let mut engine = quiet_engine();
        let mut upload = engine.begin_upload(None, None, Timestamp(0));
        let contents: Vec<Vec<u8>> = (0..12).map(|i| noise(i, 10_000 + usize::from(i))).collect();
        for content in &contents {
            upload.write(content).unwrap();
            upload.end_file().unwrap();
        }
        // The first file again: its chunk is this upload's own, in a pack not stored yet.
        upload.write(&contents[0]).unwrap();
        assert_eq!(upload.end_file().unwrap(), 12);
        upload.write(b"tiny").unwrap();
        assert_eq!(upload.end_file().unwrap(), 13);
        // Only the file living in its record is out before any pack is stored.
        let (number, value, _) = upload.poll_file().unwrap();
        assert_eq!((number, packs_of(&value)), (13, Vec::new()));
        assert!(upload.poll_file().is_none());
        assert!(
            upload.poll_request(Timestamp(0)).is_none(),
            "no pack is full yet"
        );
        upload.end_input().unwrap();
        let now = Timestamp(0);
        let puts: Vec<_> = std::iter::from_fn(|| upload.poll_request(now)).collect();
        assert!(
            (1..=2).contains(&puts.len()),
            "13 files of 10 kB went into {} packs",
            puts.len()
        );
        assert!(upload.poll_file().is_none());
        // The first pack is stored: exactly the files with no chunk in the other come out.
        upload.handle_response(puts[0].id, Ok(ok()), now);
        let unstored: Vec<String> = puts[1..].iter().map(|r| r.url.clone()).collect();
        let mut out = Vec::new();
        while let Some((number, value, report)) = upload.poll_file() {
            for pack in packs_of(&value) {
                assert!(
                    !unstored.iter().any(|u| u.ends_with(&pack.relative())),
                    "file {number} was handed out naming a pack not stored"
                );
            }
            out.push((number, report));
        }
        if let Some(second) = puts.get(1) {
            assert!(out.len() < 13, "every file was in the first pack");
            upload.handle_response(second.id, Ok(ok()), now);
            out.extend(std::iter::from_fn(|| upload.poll_file()).map(|(n, _, r)| (n, r)));
        }
        out.sort_by_key(|(n, _)| *n);
        assert_eq!(
            out.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            (0..13).collect::<Vec<_>>()
        );
        assert_eq!(
            out[12].1.chunks_reused, 1,
            "the repeated file's chunk is shared"
        );
        assert_eq!(out[0].1.content_hash, out[12].1.content_hash);
        let totals = upload.poll_end().unwrap().unwrap();
        assert_eq!(totals.packs, puts.len() as u64);
        assert_eq!((totals.chunks, totals.chunks_uploaded), (13, 12));
        assert_eq!(totals.requests, puts.len() as u64);

        // A pack that cannot be stored: none of the files in it is ever handed out.
        let mut upload = engine.begin_upload(None, None, Timestamp(0));
        for content in &contents[..3] {
            upload.write(content).unwrap();
            upload.end_file().unwrap();
        }
        upload.end_input().unwrap();
        let puts: Vec<_> = std::iter::from_fn(|| upload.poll_request(now)).collect();
        let refused = crate::http::Response {
            status: 403,
            headers: Vec::new(),
            body: b"<Error><Code>AccessDenied</Code></Error>".to_vec(),
        };
        upload.handle_response(puts[0].id, Ok(refused), now);
        for put in &puts[1..] {
            upload.handle_response(put.id, Ok(ok()), now);
        }
        assert!(upload.poll_file().is_none());
        assert_eq!(
            upload.poll_end().unwrap().unwrap_err().category(),
            crate::error::Category::Auth
        );
    }

    /// Text-like bytes that deflate: `len` of them, varied by `seed`.
    fn prose(seed: u8, len: usize) -> Vec<u8> {
        let words = [
            "pack", "chunk", "seal", "vault", "device", "sync", "merge", "file",
        ];
        let mut out = Vec::with_capacity(len + 16);
        let mut n = u64::from(seed);
        while out.len() < len {
            n = n
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            out.extend_from_slice(words[(n >> 60) as usize % words.len()].as_bytes());
            out.push(if n & 0x100 == 0 { b' ' } else { b'\n' });
        }
        out.truncate(len);
        out
    }

    /// An upload spreads its batches over threads, and what it stores is the same byte for
    /// byte whatever their number: the same packs under the same names, the same values.
    #[test]
    fn packs_come_out_the_same_whatever_the_threads() {
        let mut files: Vec<Vec<u8>> = (0..60)
            .map(|i| prose(i, 20_000 + 997 * usize::from(i)))
            .collect();
        files.push(prose(200, 3_000_000));
        files.push(noise(7, 2_500_000));
        files.push(files[3].clone());
        files.push(b"inline".to_vec());
        files.push(prose(201, 9_000_000));
        let stored = |threads: usize| {
            let mut engine = quiet_engine();
            let mut upload = engine.begin_upload(None, None, Timestamp(0));
            upload.set_threads(threads);
            for (i, file) in files.iter().enumerate() {
                for piece in file.chunks(64 << 10) {
                    upload.write(piece).unwrap();
                }
                if i == 10 {
                    upload.write(&prose(99, 700_000)).unwrap();
                    upload.abandon_file();
                }
                upload.end_file().unwrap();
            }
            upload.end_input().unwrap();
            let now = Timestamp(0);
            let mut puts = Vec::new();
            while let Some(put) = upload.poll_request(now) {
                puts.push((put.url.clone(), put.body.to_vec()));
                upload.handle_response(put.id, Ok(ok()), now);
            }
            let mut values: Vec<(u64, Vec<u8>)> = std::iter::from_fn(|| upload.poll_file())
                .map(|(n, v, _)| (n, v))
                .collect();
            values.sort();
            let totals = upload.poll_end().unwrap().unwrap();
            (puts, values, totals)
        };
        let (puts, values, totals) = stored(1);
        let input: usize = files.iter().map(Vec::len).sum();
        let sent: usize = puts.iter().map(|(_, body)| body.len()).sum();
        assert!(
            sent < input * 3 / 4,
            "{sent} bytes sent of {input}: prose deflates"
        );
        assert_eq!(
            values.len(),
            files.len(),
            "every file but the abandoned one"
        );
        assert_eq!(totals.chunks_reused, 1, "the repeated file");
        for threads in [2, 4] {
            let (their_puts, their_values, _) = stored(threads);
            assert_eq!(their_puts.len(), puts.len());
            assert!(their_puts == puts, "{threads} threads stored other packs");
            assert!(
                their_values == values,
                "{threads} threads made other values"
            );
        }
    }

    /// A file abandoned half-way (its source failed) gives no value; the files around it do.
    #[test]
    fn an_abandoned_file_gives_no_value_and_the_others_go_on() {
        let mut engine = quiet_engine();
        let mut upload = engine.begin_upload(None, None, Timestamp(0));
        upload.write(&noise(1, 9_000)).unwrap();
        assert_eq!(upload.end_file().unwrap(), 0);
        upload.write(&noise(2, 9_000_000)).unwrap();
        assert_eq!(upload.abandon_file(), 1);
        upload.write(&noise(3, 9_000)).unwrap();
        assert_eq!(upload.end_file().unwrap(), 2);
        upload.end_input().unwrap();
        let now = Timestamp(0);
        while let Some(put) = upload.poll_request(now) {
            upload.handle_response(put.id, Ok(ok()), now);
        }
        let mut numbers: Vec<u64> = std::iter::from_fn(|| upload.poll_file())
            .map(|(n, value, report)| {
                assert_eq!(FileValue::decode(b"f", &value).unwrap().size, report.size);
                n
            })
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, [0, 2]);
        assert!(upload.poll_end().unwrap().is_ok());
    }

    /// Files whose chunks lie in the batch being deflated and in the batch filling, and one
    /// abandoned half-way across such a boundary, read back byte for byte: each value names its
    /// own chunks, in order, and none of the abandoned file's. With 16 threads a batch is 16
    /// MiB, as much as input waits on: whenever input waits, a request must be there to make,
    /// or the upload would stall.
    #[test]
    fn files_across_deflating_batches_read_back_whole_around_an_abandoned_one() {
        let files = [
            prose(1, 3_000_000),
            noise(2, 5_500_000),
            noise(3, 20_000_000), // abandoned
            prose(4, 40_000),
            noise(5, 19_000_000),
            prose(6, 700_000),
        ];
        for threads in [1, 2, 16] {
            let mut engine = quiet_engine();
            let mut upload = engine.begin_upload(None, None, Timestamp(0));
            upload.set_threads(threads);
            let now = Timestamp(0);
            let mut stored: HashMap<String, Vec<u8>> = HashMap::new();
            let mut store = |upload: &mut Upload| {
                let request = upload
                    .poll_request(now)
                    .unwrap_or_else(|| panic!("{threads} threads: no request while input waits"));
                stored.insert(request.url.clone(), request.body.to_vec());
                upload.handle_response(request.id, Ok(ok()), now);
            };
            for (i, file) in files.iter().enumerate() {
                for piece in file.chunks(256 << 10) {
                    while !upload.wants_input() {
                        store(&mut upload);
                    }
                    upload.write(piece).unwrap();
                }
                match i {
                    2 => {
                        // Some of its chunks are in the batch being deflated: placed, no one's.
                        assert!(upload.chunks_deflating() > 0, "{threads} threads");
                        assert_eq!(upload.abandon_file(), 2);
                    }
                    _ => assert_eq!(upload.end_file().unwrap(), i as u64),
                }
            }
            let values = finish_upload(&mut upload, &mut stored);
            assert_eq!(
                values.len(),
                5,
                "{threads} threads: every file but the abandoned one"
            );
            for (number, value, report) in values {
                let expected = &files[number as usize];
                assert_eq!(report.size, expected.len() as u64);
                let key = format!("f{number}").into_bytes();
                engine.put(key.clone(), value, now);
                let mut download = engine.begin_download(&key).unwrap().unwrap();
                let mut read = Vec::new();
                while let Some(request) = download.poll_request(now) {
                    let response = ranged(&stored, &request);
                    download.handle_response(request.id, Ok(response), now);
                    while let Some(bytes) = download.poll_output() {
                        read.extend_from_slice(&bytes);
                    }
                }
                assert!(matches!(download.poll_outcome(), Some(Ok(()))));
                assert!(
                    read == *expected,
                    "{threads} threads: file {number} reads back other bytes"
                );
            }
        }
    }

    /// Many files read together (a restore) come down in ranges of at most 9 MiB of a pack,
    /// with no more than 24 MiB of them asked for at once, and each file whole: what a
    /// restore holds beside its files and state (a single file's ranges are whole packs).
    #[test]
    fn many_files_come_down_in_short_ranges_within_the_held_bound() {
        let files: Vec<Vec<u8>> = (0..36).map(|i| noise(100 + i, 1_300_000)).collect();
        let mut engine = quiet_engine();
        let mut upload = engine.begin_upload(None, None, Timestamp(0));
        let now = Timestamp(0);
        let mut stored: HashMap<String, Vec<u8>> = HashMap::new();
        let mut store = |upload: &mut Upload| {
            let request = upload
                .poll_request(now)
                .expect("a request while input waits");
            stored.insert(request.url.clone(), request.body.to_vec());
            upload.handle_response(request.id, Ok(ok()), now);
        };
        for file in &files {
            for piece in file.chunks(256 << 10) {
                while !upload.wants_input() {
                    store(&mut upload);
                }
                upload.write(piece).unwrap();
            }
            upload.end_file().unwrap();
        }
        let values = finish_upload(&mut upload, &mut stored);
        assert_eq!(values.len(), files.len());
        let keys: Vec<Vec<u8>> = values
            .iter()
            .map(|(number, _, _)| format!("f{number}").into_bytes())
            .collect();
        let pairs: Vec<(&[u8], &[u8])> = keys
            .iter()
            .zip(&values)
            .map(|(key, (_, value, _))| (key.as_slice(), value.as_slice()))
            .collect();
        let (mut groups, alone) = engine.begin_download_many(&pairs);
        assert!(alone.is_empty());
        assert_eq!(groups.len(), 1);
        let (mut many, places) = groups.pop().unwrap();
        let mut read: Vec<Option<Vec<u8>>> = vec![None; files.len()];
        let mut asked: std::collections::VecDeque<crate::http::Request> = Default::default();
        let (mut gets, mut most_asked, mut packs) = (0, 0, std::collections::BTreeSet::new());
        let range_of = |request: &crate::http::Request| -> (usize, usize) {
            let range = request.header("range").expect("a ranged GET");
            let (from, to) = range["bytes=".len()..].split_once('-').unwrap();
            (from.parse().unwrap(), to.parse().unwrap())
        };
        loop {
            while let Some(request) = many.poll_request(now) {
                let (from, to) = range_of(&request);
                assert!(to - from < 9 << 20, "a range of {} bytes", to - from + 1);
                packs.insert(request.url.clone());
                gets += 1;
                asked.push_back(request);
            }
            let out: usize = asked
                .iter()
                .map(|r| range_of(r).1 - range_of(r).0 + 1)
                .sum();
            assert!(out <= 24 << 20, "{out} bytes asked for at once");
            most_asked = most_asked.max(out);
            let Some(request) = asked.pop_front() else {
                break;
            };
            let response = ranged(&stored, &request);
            many.handle_response(request.id, Ok(response), now);
            while let Some((index, bytes)) = many.poll_file() {
                read[places[index]] = Some(bytes.unwrap());
            }
        }
        assert!(matches!(many.poll_outcome(), Some(Ok(()))));
        // Enough to need the bound: several packs, more than one range of each in flight.
        assert!(
            packs.len() >= 2 && gets > packs.len(),
            "{gets} GETs, {packs:?}"
        );
        assert!(most_asked > 9 << 20, "{most_asked}");
        for ((number, _, _), bytes) in values.iter().zip(read) {
            assert!(
                bytes.as_ref() == Some(&files[*number as usize]),
                "file {number}"
            );
        }
    }
}
