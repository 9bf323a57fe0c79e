//! The import journal: every transaction the importer signs is written here, and flushed
//! to disk, before it is sent. After a crash the next run reads it back and sends the very
//! same bytes again (same hash: a node sees a repeat, the ledger at most one), instead of
//! signing a row anew, which could put it on the ledger twice.
//!
//! One JSON object per line: first a header naming the chain, signer and step, then one
//! line per signed transaction. A last line cut short by a crash is ignored; any other bad
//! line is an error. The file is created 0600: enrolment lines hold tracking codes.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};

use ledger::tx::Transaction;
use serde::{Deserialize, Serialize};

/// The journal format's version.
pub const JOURNAL_VERSION: u32 = 1;
/// The largest journal line read back, in bytes (a transaction is at most
/// `TX_BYTES_MAX`, twice that in hex, plus a little).
const JOURNAL_LINE_BYTES_MAX: usize = 2 * ledger::limits::TX_BYTES_MAX + 1024;

/// The first line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub journal: String,
    pub version: u32,
    pub chain_id: String,
    pub signer: String,
    pub step: String,
}

impl Header {
    pub fn new(chain_id: &str, signer: &str, step: &str) -> Header {
        Header {
            journal: "bansos-import".into(),
            version: JOURNAL_VERSION,
            chain_id: chain_id.into(),
            signer: signer.into(),
            step: step.into(),
        }
    }
}

/// One signed transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The row it carries (hex of [`super::plan::RowKey`]); none for a skipped nonce.
    pub row: Option<String>,
    /// The signed transaction's canonical bytes, hex.
    pub tx: String,
    /// An enrolment's tracking code, to hand to the citizen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_code: Option<String>,
}

/// The ledger's refusal of one of the journal's transactions, recorded once seen, so that a
/// re-run reports the row the same way whatever the node still remembers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The refused transaction's hash.
    pub refused: String,
    pub code: String,
    pub message: String,
}

/// A journal line after the header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Line {
    Signed(Entry),
    Refused(Refusal),
}

impl Entry {
    pub fn new(row: Option<String>, tx: &Transaction, tracking_code: Option<String>) -> Entry {
        Entry {
            row,
            tx: hex::encode(tx.to_bytes()),
            tracking_code,
        }
    }

    pub fn transaction(&self) -> Result<Transaction, JournalError> {
        let bytes = hex::decode(&self.tx).map_err(|e| JournalError::Bad(e.to_string()))?;
        Transaction::from_bytes(&bytes).map_err(|e| JournalError::Bad(e.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("journal {path} belongs to another import ({found}); this one is {expected}. Give another --out, or move the old result and journal away")]
    Mismatch {
        path: String,
        found: String,
        expected: String,
    },
    #[error("journal {path}, line {line}: {message}; the file is damaged")]
    Damaged {
        path: String,
        line: usize,
        message: String,
    },
    #[error("a journal entry does not decode: {0}")]
    Bad(String),
    #[error("journal {path} is in use by another import of the same file; wait for it to end")]
    Busy { path: String },
}

/// An open journal, appending.
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Opens the journal at `path`, creating it with `header` if absent. Returns it with
    /// the entries already in it.
    pub fn open(path: &Path, header: &Header) -> Result<(Journal, Vec<Line>), JournalError> {
        let shown = path.display().to_string();
        let io = |source| JournalError::Io {
            path: shown.clone(),
            source,
        };
        let (entries, complete_bytes) = if path.exists() {
            read_entries(path, header)?
        } else {
            let mut file = create_private(path).map_err(io)?;
            let line =
                serde_json::to_string(header).map_err(|e| JournalError::Bad(e.to_string()))?;
            writeln!(file, "{line}").map_err(io)?;
            file.sync_all().map_err(io)?;
            sync_parent(path).map_err(io)?;
            (Vec::new(), None)
        };
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io)?;
        // One import per journal at a time: a second run would sign the same rows again.
        file.try_lock().map_err(|_| JournalError::Busy {
            path: shown.clone(),
        })?;
        if let Some(length) = complete_bytes {
            // Drop a last line cut short by a crash, so that new lines start cleanly.
            file.set_len(length).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        Ok((
            Journal {
                path: path.to_owned(),
                file,
            },
            entries,
        ))
    }

    /// Appends `entries` and waits until they are on disk.
    pub fn append(&mut self, entries: &[Line]) -> Result<(), JournalError> {
        if entries.is_empty() {
            return Ok(());
        }
        let io = |source| JournalError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let mut text = String::new();
        for entry in entries {
            let line =
                serde_json::to_string(entry).map_err(|e| JournalError::Bad(e.to_string()))?;
            text.push_str(&line);
            text.push('\n');
        }
        self.file.write_all(text.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}

/// Creates a new file readable by its owner only (mode 0600 from the start).
pub(super) fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// Makes a new file's directory entry durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

/// The entries, and the length of the file's complete lines when a last line was cut
/// short.
type ReadBack = (Vec<Line>, Option<u64>);

fn read_entries(path: &Path, expected: &Header) -> Result<ReadBack, JournalError> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|source| JournalError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut lines = Vec::new();
    let mut reader = BufReader::new(file);
    loop {
        let mut line = Vec::new();
        let read = reader
            .by_ref()
            .take(JOURNAL_LINE_BYTES_MAX as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|source| JournalError::Io {
                path: shown.clone(),
                source,
            })?;
        if read == 0 {
            break;
        }
        lines.push(line);
    }
    let damaged = |line: usize, message: String| JournalError::Damaged {
        path: shown.clone(),
        line,
        message,
    };
    let Some(first) = lines.first() else {
        return Err(damaged(1, "empty".into()));
    };
    let header: Header =
        serde_json::from_slice(first).map_err(|e| damaged(1, format!("no header: {e}")))?;
    if &header != expected {
        return Err(JournalError::Mismatch {
            path: shown,
            found: describe(&header),
            expected: describe(expected),
        });
    }
    let last = lines.len() - 1;
    let mut entries = Vec::new();
    let mut cut_at = None;
    for (i, line) in lines.iter().enumerate().skip(1) {
        let complete = line.ends_with(b"\n");
        match serde_json::from_slice::<Line>(line) {
            Ok(entry) if complete => entries.push(entry),
            // Cut short by a crash while writing: it was never sent.
            _ if i == last && !complete => {
                let kept: usize = lines[..i].iter().map(Vec::len).sum();
                cut_at = Some(kept as u64);
                break;
            }
            // Only a line over the length limit is cut before its end elsewhere.
            Ok(_) => {
                return Err(damaged(
                    i + 1,
                    format!("longer than {JOURNAL_LINE_BYTES_MAX} bytes"),
                ))
            }
            Err(e) => return Err(damaged(i + 1, e.to_string())),
        }
    }
    Ok((entries, cut_at))
}

fn describe(header: &Header) -> String {
    format!(
        "step {} signed by {} on chain {}",
        header.step, header.signer, header.chain_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use ledger::tx::{Action, TxBody};
    use ledger::types::PublicKey;

    fn tx(nonce: u64) -> Transaction {
        let key = SigningKey::from_bytes(&[7; 32]);
        TxBody {
            chain_id: "c".into(),
            signer: PublicKey(key.verifying_key().to_bytes()),
            nonce,
            action: Action::SkipNonce {},
        }
        .sign(&key)
    }

    #[test]
    fn entries_come_back_and_a_line_cut_short_is_dropped() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("j");
        let header = Header::new("c", "k", "propose");
        let (mut journal, entries) = Journal::open(&path, &header).expect("new");
        assert!(entries.is_empty());
        let written = vec![
            Line::Signed(Entry::new(Some("aa".into()), &tx(0), None)),
            Line::Signed(Entry::new(None, &tx(1), Some("BNS-X".into()))),
            Line::Refused(Refusal {
                refused: tx(0).hash().to_string(),
                code: "duplicate_proposal".into(),
                message: "m".into(),
            }),
        ];
        journal.append(&written).expect("append");
        drop(journal);
        let (_, read) = Journal::open(&path, &header).expect("reopen");
        assert_eq!(read, written);
        let Line::Signed(second) = &read[1] else {
            panic!("a signed line")
        };
        assert_eq!(second.transaction().expect("decodes"), tx(1));
        // A crash in the middle of a line.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        file.write_all(b"{\"row\":\"bb\",\"tx\":\"00")
            .expect("write");
        let (mut journal, read) = Journal::open(&path, &header).expect("reopen after a crash");
        assert_eq!(read, written);
        // The cut line is gone: what is appended next reads back whole.
        let more = Line::Signed(Entry::new(Some("cc".into()), &tx(2), None));
        journal.append(std::slice::from_ref(&more)).expect("append");
        assert!(
            matches!(
                Journal::open(&path, &header),
                Err(JournalError::Busy { .. })
            ),
            "a second import of the same journal at once"
        );
        drop(journal);
        let (_, read) = Journal::open(&path, &header).expect("reopen");
        assert_eq!(read, [written.clone(), vec![more]].concat());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn another_imports_journal_or_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("j");
        Journal::open(&path, &Header::new("c", "k", "propose")).expect("new");
        let other = Journal::open(&path, &Header::new("c", "k", "disburse"));
        assert!(matches!(other, Err(JournalError::Mismatch { .. })));
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        file.write_all(b"not json\n{}\n").expect("write");
        let damaged = Journal::open(&path, &Header::new("c", "k", "propose"));
        assert!(
            matches!(damaged, Err(JournalError::Damaged { line: 2, .. })),
            "{:?}",
            damaged.err()
        );
    }
}
