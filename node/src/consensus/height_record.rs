//! The highest height this node took part in consensus at, kept on disk so that a ledger
//! restored from an older backup is noticed before the node votes again (see
//! [`super::proposals::CONSENSUS_HEIGHT_FILE`]).
//!
//! It is written at every height, before the node signs anything there, so its write is on
//! the path of every block. A file of two fixed slots is overwritten in place, one slot at a
//! time, and synced with `fdatasync`: no file is created, renamed or grown, so the sync
//! carries no metadata (the first version wrote a new file, renamed it and synced the
//! directory: three journal commits a height on five nodes sharing one disk). A slot holds a
//! height and a checksum; a write cut short leaves a slot that does not check, and the
//! other slot still holds the height before. The newer of the slots that check is the
//! record, which is why a write always goes to the slot that does not hold it.

use std::fs::{self, File, OpenOptions};
use std::io::{Error, ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ledger::types::Hash32;

/// Bytes of one slot: [`SLOT_MAGIC`], the height (u64, little-endian), then the first
/// [`SLOT_CHECKSUM_BYTES`] of the hash of the two.
const SLOT_BYTES: usize = 32;
/// Marks a slot of this format.
const SLOT_MAGIC: &[u8; 8] = b"bansosCH";
/// Bytes of the checksum that ends a slot.
const SLOT_CHECKSUM_BYTES: usize = SLOT_BYTES - SLOT_MAGIC.len() - 8;
/// Bytes of the file: two slots.
pub const RECORD_FILE_BYTES: usize = 2 * SLOT_BYTES;
/// The longest file of the first format (the height as decimal text) read and upgraded.
const LEGACY_TEXT_BYTES_MAX: u64 = 20;

/// The record, open for reading and writing.
pub struct HeightRecord {
    file: File,
    path: PathBuf,
}

/// What a slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Never written (zeros).
    Empty,
    /// A height whose checksum checks.
    Height(u64),
    /// Anything else: a write cut short.
    Torn,
}

impl HeightRecord {
    /// Opens the record `path`, creating it (empty: no height) if absent, and upgrading a
    /// record of the first format (decimal text).
    pub fn open(path: &Path) -> std::io::Result<HeightRecord> {
        match fs::metadata(path) {
            Err(e) if e.kind() == ErrorKind::NotFound => create(path, None)?,
            Err(e) => return Err(e),
            Ok(meta) if meta.len() == RECORD_FILE_BYTES as u64 => {}
            Ok(meta) if meta.len() <= LEGACY_TEXT_BYTES_MAX => {
                create(path, Some(read_legacy(path)?))?;
            }
            Ok(meta) => {
                return Err(invalid(format!(
                    "{} holds {} bytes; a consensus height record holds {RECORD_FILE_BYTES}",
                    path.display(),
                    meta.len()
                )))
            }
        }
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(HeightRecord {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The recorded height, if any.
    pub fn get(&self) -> std::io::Result<Option<u64>> {
        let [a, b] = self.slots()?;
        match (a, b) {
            (Slot::Height(x), Slot::Height(y)) => Ok(Some(x.max(y))),
            (Slot::Height(x), _) | (_, Slot::Height(x)) => Ok(Some(x)),
            // One write cut short before any completed: nothing was signed at its height.
            (Slot::Empty, _) | (_, Slot::Empty) => Ok(None),
            (Slot::Torn, Slot::Torn) => Err(invalid(format!(
                "the consensus height record {} is corrupt: neither slot checks",
                self.path.display()
            ))),
        }
    }

    /// Durably records `height`; returns once it is on disk. Writes the slot that does not
    /// hold the current record, so that a write cut short leaves the current one.
    pub fn record(&self, height: u64) -> std::io::Result<()> {
        let [a, b] = self.slots()?;
        let index = match (a, b) {
            (Slot::Height(x), Slot::Height(y)) if x >= y => 1,
            (Slot::Height(_), Slot::Height(_)) => 0,
            (Slot::Height(_), _) => 1,
            _ => 0,
        };
        self.file
            .write_all_at(&encode(height), (index * SLOT_BYTES) as u64)?;
        self.file.sync_data()
    }

    fn slots(&self) -> std::io::Result<[Slot; 2]> {
        let mut bytes = [0u8; RECORD_FILE_BYTES];
        self.file.read_exact_at(&mut bytes, 0)?;
        let (a, b) = bytes.split_at(SLOT_BYTES);
        Ok([decode(a), decode(b)])
    }
}

fn encode(height: u64) -> [u8; SLOT_BYTES] {
    let mut slot = [0u8; SLOT_BYTES];
    slot[..8].copy_from_slice(SLOT_MAGIC);
    slot[8..16].copy_from_slice(&height.to_le_bytes());
    let checksum = Hash32::digest(&slot[..16]);
    slot[16..].copy_from_slice(&checksum.0[..SLOT_CHECKSUM_BYTES]);
    slot
}

fn decode(slot: &[u8]) -> Slot {
    if slot.iter().all(|&b| b == 0) {
        return Slot::Empty;
    }
    let mut height = [0u8; 8];
    height.copy_from_slice(&slot[8..16]);
    let height = u64::from_le_bytes(height);
    if slot == encode(height) {
        Slot::Height(height)
    } else {
        Slot::Torn
    }
}

/// Writes a whole record (`height` in the first slot, or none) under a temporary name,
/// syncs it, renames it over `path` and syncs the directory: the file is either the old one
/// or the whole new one.
fn create(path: &Path, height: Option<u64>) -> std::io::Result<()> {
    let mut bytes = [0u8; RECORD_FILE_BYTES];
    if let Some(height) = height {
        bytes[..SLOT_BYTES].copy_from_slice(&encode(height));
    }
    let temporary = path.with_extension("tmp");
    let mut file = File::create(&temporary)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temporary, path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

fn read_legacy(path: &Path) -> std::io::Result<u64> {
    let text = fs::read_to_string(path)?;
    text.trim()
        .parse()
        .map_err(|e| invalid(format!("{} does not hold a height: {e}", path.display())))
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_in(dir: &Path) -> (std::path::PathBuf, HeightRecord) {
        let path = dir.join("consensus-height");
        let record = HeightRecord::open(&path).unwrap();
        (path, record)
    }

    /// Flips one byte of slot `index` in the file, as a write cut short would leave it.
    fn tear(path: &Path, index: usize) {
        let mut bytes = fs::read(path).unwrap();
        bytes[index * SLOT_BYTES + 12] ^= 0xff;
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_recorded_height_survives_reopening_and_the_highest_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (path, record) = record_in(dir.path());
        assert_eq!(record.get().unwrap(), None);
        for height in [5, 6, 9] {
            record.record(height).unwrap();
            assert_eq!(record.get().unwrap(), Some(height));
        }
        drop(record);
        assert_eq!(fs::metadata(&path).unwrap().len(), RECORD_FILE_BYTES as u64);
        let (_, record) = record_in(dir.path());
        assert_eq!(record.get().unwrap(), Some(9));
    }

    #[test]
    fn a_write_cut_short_leaves_the_height_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let (path, record) = record_in(dir.path());
        record.record(41).unwrap();
        record.record(42).unwrap();
        let bytes = fs::read(&path).unwrap();
        let newest = (0..2)
            .find(|i| decode(&bytes[i * SLOT_BYTES..(i + 1) * SLOT_BYTES]) == Slot::Height(42))
            .unwrap();
        // The write of 42 went to the slot that did not hold 41: 41 is still there.
        tear(&path, newest);
        assert_eq!(record.get().unwrap(), Some(41));
        // The next write goes to the torn slot, not over 41.
        record.record(43).unwrap();
        tear(&path, newest);
        assert_eq!(record.get().unwrap(), Some(41));
    }

    #[test]
    fn a_first_write_cut_short_records_nothing_and_two_torn_slots_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (path, record) = record_in(dir.path());
        record.record(7).unwrap();
        tear(&path, 0);
        assert_eq!(record.get().unwrap(), None);
        let mut bytes = fs::read(&path).unwrap();
        let first = bytes[..SLOT_BYTES].to_vec();
        bytes[SLOT_BYTES..].copy_from_slice(&first);
        fs::write(&path, bytes).unwrap();
        let error = record.get().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidData);
        assert!(error.to_string().contains("corrupt"), "{error}");
    }

    #[test]
    fn a_record_of_the_first_format_is_read_and_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consensus-height");
        fs::write(&path, "41").unwrap();
        let record = HeightRecord::open(&path).unwrap();
        assert_eq!(record.get().unwrap(), Some(41));
        assert_eq!(fs::metadata(&path).unwrap().len(), RECORD_FILE_BYTES as u64);
        record.record(42).unwrap();
        assert_eq!(record.get().unwrap(), Some(42));
    }

    #[test]
    fn a_file_that_is_no_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consensus-height");
        fs::write(&path, "not a height").unwrap();
        let error = HeightRecord::open(&path).err().unwrap();
        assert_eq!(error.kind(), ErrorKind::InvalidData);
        fs::write(&path, vec![7u8; 100]).unwrap();
        let error = HeightRecord::open(&path).err().unwrap();
        assert!(error.to_string().contains("100 bytes"), "{error}");
    }
}
