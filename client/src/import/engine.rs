//! Following the signer's nonce until every row is settled.
//!
//! Each pass asks the node for the signer's committed next nonce `next`, then:
//! 1. **settles** every nonce below `next`: the transaction of ours committed there gives
//!    its row a hash and height; a row whose transaction lost its nonce to another (a
//!    skip, or another client of the same key) is signed again, or recorded refused
//!    when the ledger said why;
//! 2. if `next` has not moved since the last pass, **looks at the blocker**, our
//!    transaction at `next`: refused by the ledger → its row is refused and a
//!    `SkipNonce` takes the nonce; dropped or unknown to the node → the open
//!    transactions are sent again, byte for byte;
//! 3. **signs** rows not yet signed, up to the window, at the nonces after the last open
//!    one, into the journal first;
//! 4. **sends** what is new or due again, in binary batches.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use ed25519_dalek::SigningKey;
use futures::StreamExt as _;
use ledger::tx::{Action, Transaction, TxBody};
use ledger::types::PublicKey;
use proto::api::{TxState, TxStatusJson, TX_BATCH_TXS_MAX};

use super::journal::{Entry, Journal, Line, Refusal};
use super::plan::{self, Planned, RowKey};
use crate::http::{NodeClient, STATUS_QUERIES_IN_FLIGHT_MAX};

/// The most transactions of the import open at once (signed, not yet settled): below a
/// node's per-signer pending cap (`node::mempool::PENDING_PER_SIGNER_MAX`, 4,096).
pub const IMPORT_IN_FLIGHT_MAX: usize = 4_000;
/// How long the import waits without any progress on the ledger before it gives up (the
/// journal keeps everything; a re-run resumes).
pub const IMPORT_STALL_TIMEOUT: Duration = Duration::from_secs(120);
/// The pause between passes that found nothing to do.
pub const IMPORT_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// The shortest time between two resends of the open transactions after the one at the
/// signer's next nonce was dropped or forgotten by the node.
pub const IMPORT_RESEND_INTERVAL: Duration = Duration::from_secs(2);
/// How many times one row is signed in one run before the import stops trying: each
/// time, another transaction of the same key took its nonce.
pub const ROW_SIGNINGS_MAX: u32 = 4;

/// Error codes that say nothing about the row itself: the transaction was dropped, its
/// nonce taken, or the node was busy. Any other code is the ledger's verdict on the row.
const NOT_A_VERDICT: &[&str] = &[
    "mempool_full",
    "signer_pending_full",
    "nonce_too_far_ahead",
    "predecessor_refused",
    "expired",
    "bad_nonce",
    "busy",
    "replaced",
];

/// What a signed transaction carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A row of the file.
    Row(usize),
    /// A skipped nonce.
    Skip,
    /// A row of an earlier run that is no longer in the file (from the journal).
    Foreign,
}

/// One signed transaction of this import (from the journal or this run).
struct Sent {
    kind: Kind,
    tx: Transaction,
    hash: String,
    tracking_code: Option<String>,
    earlier_run: bool,
}

/// Where a row stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RowState {
    Unsigned,
    Open(usize),
    Committed {
        sent: usize,
        height: u64,
    },
    Refused {
        sent: usize,
        code: String,
        message: String,
    },
}

/// A row's outcome, for the result file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowResult {
    Committed {
        line: u64,
        hash: String,
        height: u64,
        earlier_run: bool,
        tracking_code: Option<String>,
    },
    Refused {
        line: u64,
        hash: String,
        code: String,
        message: String,
    },
    /// Signed and sent, not yet settled (the import stopped).
    Open {
        line: u64,
        hash: String,
    },
    NotSent {
        line: u64,
    },
}

impl RowResult {
    /// The result file's columns: line, status, tx_hash, height, error_code,
    /// error_message, tracking_code.
    pub fn record(&self) -> [String; 7] {
        let empty = String::new;
        match self {
            RowResult::Committed {
                line,
                hash,
                height,
                tracking_code,
                ..
            } => [
                line.to_string(),
                "committed".into(),
                hash.clone(),
                height.to_string(),
                empty(),
                empty(),
                tracking_code.clone().unwrap_or_default(),
            ],
            RowResult::Refused {
                line,
                hash,
                code,
                message,
            } => [
                line.to_string(),
                "refused".into(),
                hash.clone(),
                empty(),
                code.clone(),
                message.clone(),
                empty(),
            ],
            RowResult::Open { line, hash } => [
                line.to_string(),
                "pending".into(),
                hash.clone(),
                empty(),
                empty(),
                empty(),
                empty(),
            ],
            RowResult::NotSent { line } => [
                line.to_string(),
                "not_sent".into(),
                empty(),
                empty(),
                empty(),
                empty(),
                empty(),
            ],
        }
    }
}

/// The import's state.
pub struct Engine {
    client: NodeClient,
    key: SigningKey,
    signer: PublicKey,
    chain_id: String,
    rows: Vec<Planned>,
    state: Vec<RowState>,
    signings: Vec<u32>,
    sent: Vec<Sent>,
    /// Unsettled nonces and the transactions of ours signed at each, newest last.
    open: BTreeMap<u64, Vec<usize>>,
    /// The ledger's verdicts seen on our transactions (this run's, and the journal's).
    verdicts: HashMap<usize, (String, String)>,
    /// Transactions whose verdict is in the journal.
    recorded: std::collections::HashSet<usize>,
    /// Sign again rows refused in an earlier run (`--retry-refused`).
    retry_refused: bool,
    journal: Journal,
    last_next: Option<u64>,
    /// When open transactions were last sent again because the blocker was dropped.
    last_resend: Option<Instant>,
    /// The pseudonym key version the rows' pseudonyms were made under, if by the service.
    pseudonym_key_version: Option<u32>,
}

impl Engine {
    /// Takes up the journal's entries: each is a transaction that may be on the ledger.
    pub fn new(
        client: NodeClient,
        key: SigningKey,
        chain_id: String,
        rows: Vec<Planned>,
        journal: Journal,
        lines: Vec<Line>,
        retry_refused: bool,
    ) -> anyhow::Result<Engine> {
        let signer = PublicKey(key.verifying_key().to_bytes());
        let mut engine = Engine {
            client,
            key,
            signer,
            chain_id,
            state: vec![RowState::Unsigned; rows.len()],
            signings: vec![0; rows.len()],
            rows,
            sent: Vec::new(),
            open: BTreeMap::new(),
            verdicts: HashMap::new(),
            recorded: std::collections::HashSet::new(),
            retry_refused,
            journal,
            last_next: None,
            last_resend: None,
            pseudonym_key_version: None,
        };
        let by_key: HashMap<RowKey, usize> = engine
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| (row.key, i))
            .collect();
        let mut refusals = HashMap::new();
        for line in lines {
            match line {
                Line::Signed(entry) => engine.take_up(entry, &by_key)?,
                Line::Refused(refusal) => {
                    refusals.insert(refusal.refused, (refusal.code, refusal.message));
                }
            }
        }
        for (index, sent) in engine.sent.iter().enumerate() {
            if let Some(verdict) = refusals.remove(&sent.hash) {
                engine.verdicts.insert(index, verdict);
                engine.recorded.insert(index);
            }
        }
        Ok(engine)
    }

    fn take_up(&mut self, entry: Entry, by_key: &HashMap<RowKey, usize>) -> anyhow::Result<()> {
        let tx = entry.transaction()?;
        if tx.body.signer != self.signer || tx.body.chain_id != self.chain_id {
            bail!("the journal holds a transaction of another signer or chain; it is not this import's");
        }
        let kind = match &entry.row {
            None if tx.body.action == Action::SkipNonce {} => Kind::Skip,
            None => bail!("the journal holds a transaction without its row"),
            Some(hex) => {
                let key = RowKey::from_hex(hex)
                    .map_err(|_| anyhow::anyhow!("the journal names row {hex:?}"))?;
                // A row no longer in the file: its transaction is still ours to settle (a
                // skip takes its nonce if it is still open).
                by_key
                    .get(&key)
                    .map_or(Kind::Foreign, |&row| Kind::Row(row))
            }
        };
        let index = self.sent.len();
        if let Kind::Row(row) = kind {
            self.state[row] = RowState::Open(index);
            if let Some(code) = &entry.tracking_code {
                let action = plan::with_tracking_code(&self.rows[row].action, code)
                    .context("a tracking code in the journal does not check")?;
                self.rows[row].action = action;
                self.rows[row].tracking_code = Some(code.clone());
            }
        }
        self.open.entry(tx.body.nonce).or_default().push(index);
        self.sent.push(Sent {
            kind,
            hash: tx.hash().to_string(),
            tx,
            tracking_code: entry.tracking_code,
            earlier_run: true,
        });
        Ok(())
    }

    /// Runs passes until every row and skip is settled, or nothing moves for
    /// [`IMPORT_STALL_TIMEOUT`].
    pub async fn run(&mut self, progress: &indicatif::ProgressBar) -> anyhow::Result<()> {
        let mut last_progress = Instant::now();
        let mut seen_before = None;
        loop {
            let pass = self.pass().await;
            let settled = self.settled();
            progress.set_position(settled as u64);
            progress.set_message(format!("{} open", self.open.len()));
            let seen = Some((settled, self.open.len(), self.last_next));
            if seen != seen_before {
                last_progress = Instant::now();
                seen_before = seen;
            }
            match pass {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(PassError::Fatal(error)) => return Err(error),
                Err(PassError::Retry(error)) => {
                    progress.suspend(|| eprintln!("retrying: {error:#}"));
                }
            }
            if last_progress.elapsed() > IMPORT_STALL_TIMEOUT {
                bail!(
                    "nothing settled for {IMPORT_STALL_TIMEOUT:?} ({} transactions open from nonce {}); the journal keeps them: run the same command again to resume",
                    self.open.len(),
                    self.open.keys().next().copied().unwrap_or_default()
                );
            }
            tokio::time::sleep(IMPORT_POLL_INTERVAL).await;
        }
    }

    fn settled(&self) -> usize {
        self.state
            .iter()
            .filter(|s| matches!(s, RowState::Committed { .. } | RowState::Refused { .. }))
            .count()
    }

    /// Holds the run to pseudonym key `version`: if the ledger's key changes while it runs,
    /// it stops before signing another row.
    pub fn with_pseudonym_key(mut self, version: Option<u32>) -> Engine {
        self.pseudonym_key_version = version;
        self
    }

    /// Refuses to go on once the ledger's pseudonym key is no longer the one the rows'
    /// pseudonyms were made under: a person proposed under the old key after the re-keying
    /// was linked would become a second beneficiary.
    async fn check_pseudonym_key(&self) -> Result<(), PassError> {
        let Some(version) = self.pseudonym_key_version else {
            return Ok(());
        };
        let keys = self.client.pseudonym_keys().await.map_err(retry)?;
        let current = keys.keys.last().map(|k| k.key_version);
        if current != Some(version) {
            return Err(PassError::Fatal(anyhow::anyhow!(
                "the ledger's pseudonym key changed from version {version} to {} during this import; run the same command again to sign the remaining rows with pseudonyms under the new key (rows already committed are kept)",
                current.map_or("none".to_owned(), |v| v.to_string())
            )));
        }
        Ok(())
    }

    /// One pass; `true` once everything is settled.
    async fn pass(&mut self) -> Result<bool, PassError> {
        self.check_pseudonym_key().await?;
        let next = self
            .client
            .key(&self.signer)
            .await
            .map_err(retry)?
            .next_nonce;
        self.settle(next).await?;
        let mut due = Vec::new();
        let stuck = self.last_next == Some(next) || self.last_next.is_none();
        if stuck && self.open.range(next..).next().is_some() {
            self.unblock(next, &mut due).await?;
        }
        self.last_next = Some(next);
        self.sign_rows(next, &mut due).map_err(PassError::Fatal)?;
        self.send(due).await?;
        let unsigned = self.state.contains(&RowState::Unsigned);
        Ok(self.open.is_empty() && !unsigned)
    }

    /// Settles every open nonce below `next`.
    async fn settle(&mut self, next: u64) -> Result<(), PassError> {
        let nonces: Vec<u64> = self.open.range(..next).map(|(n, _)| *n).collect();
        let indexes: Vec<usize> = nonces
            .iter()
            .flat_map(|n| self.open[n].iter().copied())
            .collect();
        let statuses = self.statuses(&indexes).await?;
        let mut refusals = Vec::new();
        for (index, status) in indexes.into_iter().zip(statuses) {
            self.settle_one(index, &status);
            if let Some(line) = self.refusal_to_record(index) {
                refusals.push(line);
            }
        }
        self.journal
            .append(&refusals)
            .map_err(|e| PassError::Fatal(e.into()))?;
        for nonce in nonces {
            self.open.remove(&nonce);
        }
        Ok(())
    }

    /// The journal line for a row just refused, unless the journal has it already.
    fn refusal_to_record(&mut self, index: usize) -> Option<Line> {
        let Kind::Row(row) = self.sent[index].kind else {
            return None;
        };
        let RowState::Refused {
            sent,
            code,
            message,
        } = &self.state[row]
        else {
            return None;
        };
        if *sent != index || !self.recorded.insert(index) {
            return None;
        }
        Some(Line::Refused(Refusal {
            refused: self.sent[index].hash.clone(),
            code: code.clone(),
            message: message.clone(),
        }))
    }

    fn settle_one(&mut self, index: usize, status: &TxStatusJson) {
        let Kind::Row(row) = self.sent[index].kind else {
            return;
        };
        if self.state[row] != RowState::Open(index) && status.status != TxState::Committed {
            return; // an older transaction of a row signed again: it lost its nonce
        }
        let retry = self.retry_refused && self.sent[index].earlier_run;
        self.state[row] = if status.status == TxState::Committed {
            RowState::Committed {
                sent: index,
                height: status.height.unwrap_or_default(),
            }
        } else if retry {
            RowState::Unsigned
        } else if let Some((code, message)) = self.verdict(index, status) {
            RowState::Refused {
                sent: index,
                code,
                message,
            }
        } else if self.signings[row] >= ROW_SIGNINGS_MAX {
            RowState::Refused {
                sent: index,
                code: "nonce_taken".into(),
                message: format!(
                    "signed {ROW_SIGNINGS_MAX} times; each time another transaction of this key took its nonce"
                ),
            }
        } else {
            RowState::Unsigned
        };
    }

    /// The ledger's verdict on a transaction, if it gave one.
    fn verdict(&self, index: usize, status: &TxStatusJson) -> Option<(String, String)> {
        let from_node = status
            .error
            .as_ref()
            .filter(|_| status.status == TxState::Rejected)
            .filter(|e| !NOT_A_VERDICT.contains(&e.code.as_str()))
            .map(|e| (e.code.clone(), e.message.clone()));
        from_node.or_else(|| self.verdicts.get(&index).cloned())
    }

    /// Looks at our transaction at `next`, which has not gone in since the last pass.
    /// Holding nothing at `next` (another client of the same key holds it), it waits.
    async fn unblock(&mut self, next: u64, due: &mut Vec<usize>) -> Result<(), PassError> {
        let Some(&index) = self.open.get(&next).and_then(|at| at.last()) else {
            return Ok(());
        };
        let Some(status) = self.statuses(&[index]).await?.into_iter().next() else {
            return Ok(());
        };
        let verdict = self.verdict(index, &status);
        let replaced = status.error.as_ref().is_some_and(|e| e.code == "replaced");
        match (status.status, &self.sent[index].kind) {
            (TxState::Pending | TxState::Committed, _) => {}
            // Another client of the same key signed this nonce: its transaction goes in
            // (or not) first; ours settles then, and its row is signed again.
            (TxState::Rejected, _) if replaced => {}
            (TxState::Rejected, Kind::Skip) if verdict.is_some() => {
                return Err(PassError::Fatal(anyhow::anyhow!(
                    "the ledger refused to skip nonce {next}: {:?}",
                    status.error
                )));
            }
            (TxState::Rejected, Kind::Row(_)) if verdict.is_some() => {
                if let Some(verdict) = verdict {
                    self.verdicts.insert(index, verdict);
                }
                due.push(self.sign_skip(next)?);
                self.resend_open_from(next.saturating_add(1), due);
            }
            // A row no longer in the file, not on the ledger: its nonce is skipped.
            (TxState::Rejected | TxState::Unknown, Kind::Foreign) => {
                due.push(self.sign_skip(next)?);
                self.resend_open_from(next.saturating_add(1), due);
            }
            // Dropped, or unknown to the node: send again, though not every pass (a node
            // answering `mempool_full` needs time, not the same 4,000 transactions again).
            (TxState::Rejected | TxState::Unknown, _) => {
                let due_again = self
                    .last_resend
                    .is_none_or(|at| at.elapsed() >= IMPORT_RESEND_INTERVAL);
                if due_again {
                    self.last_resend = Some(Instant::now());
                    self.resend_open_from(next, due);
                }
            }
        }
        Ok(())
    }

    /// Sends again the newest of ours at each open nonce from `from` (byte for byte).
    fn resend_open_from(&self, from: u64, due: &mut Vec<usize>) {
        for at in self.open.range(from..).map(|(_, at)| at) {
            if let Some(&newest) = at.last() {
                if matches!(self.sent[newest].kind, Kind::Foreign) {
                    continue; // its row left the file: never sent again
                }
                due.push(newest);
            }
        }
    }

    /// Signs a skip of `nonce`, journalled.
    fn sign_skip(&mut self, nonce: u64) -> Result<usize, PassError> {
        let tx = self.sign(nonce, Action::SkipNonce {});
        self.journal
            .append(&[Line::Signed(Entry::new(None, &tx, None))])
            .map_err(|e| PassError::Fatal(e.into()))?;
        Ok(self.open_sent(Kind::Skip, tx, None))
    }

    fn sign(&self, nonce: u64, action: Action) -> Transaction {
        TxBody {
            chain_id: self.chain_id.clone(),
            signer: self.signer,
            nonce,
            action,
        }
        .sign(&self.key)
    }

    /// Opens a journalled transaction.
    fn open_sent(&mut self, kind: Kind, tx: Transaction, code: Option<String>) -> usize {
        let index = self.sent.len();
        self.open.entry(tx.body.nonce).or_default().push(index);
        if let Kind::Row(row) = kind {
            self.state[row] = RowState::Open(index);
            self.signings[row] += 1;
        }
        self.sent.push(Sent {
            kind,
            hash: tx.hash().to_string(),
            tx,
            tracking_code: code,
            earlier_run: false,
        });
        index
    }

    /// Signs unsigned rows into the window, all journalled with one flush. Nothing is
    /// signed while a transaction of a row no longer in the file is open: an edited row's
    /// old version could still commit beside its new one.
    fn sign_rows(&mut self, next: u64, due: &mut Vec<usize>) -> anyhow::Result<()> {
        let foreign_open = self
            .open
            .values()
            .flatten()
            .any(|&i| self.sent[i].kind == Kind::Foreign);
        if foreign_open {
            return Ok(());
        }
        let in_flight = self.open.range(next..).count();
        let room = IMPORT_IN_FLIGHT_MAX.saturating_sub(in_flight);
        let first = self
            .open
            .keys()
            .next_back()
            .map_or(next, |last| last.saturating_add(1).max(next));
        let rows: Vec<usize> = (0..self.rows.len())
            .filter(|&r| self.state[r] == RowState::Unsigned)
            .take(room)
            .collect();
        let mut entries = Vec::with_capacity(rows.len());
        let mut signed = Vec::with_capacity(rows.len());
        for (nonce, row) in (first..).zip(rows) {
            let tx = self.sign(nonce, self.rows[row].action.clone());
            tx.check_form(&self.chain_id)
                .with_context(|| format!("line {}", self.rows[row].line))?;
            let code = self.rows[row].tracking_code.clone();
            entries.push(Line::Signed(Entry::new(
                Some(self.rows[row].key.to_string()),
                &tx,
                code.clone(),
            )));
            signed.push((row, tx, code));
        }
        self.journal.append(&entries)?;
        for (row, tx, code) in signed {
            due.push(self.open_sent(Kind::Row(row), tx, code));
        }
        Ok(())
    }

    /// Sends transactions in nonce order, in batches. A refusal on admission that no
    /// retry can mend (an unknown key, a role that may not take the step) ends the import.
    async fn send(&mut self, mut due: Vec<usize>) -> Result<(), PassError> {
        due.sort_unstable_by_key(|&i| self.sent[i].tx.body.nonce);
        due.dedup();
        for chunk in due.chunks(TX_BATCH_TXS_MAX) {
            let txs: Vec<Transaction> = chunk.iter().map(|&i| self.sent[i].tx.clone()).collect();
            let answer = self.client.submit_batch(&txs).await.map_err(retry)?;
            for (&index, item) in chunk.iter().zip(&answer.results) {
                let Some(error) = &item.error else { continue };
                if NOT_A_VERDICT.contains(&error.code.as_str()) {
                    continue; // settled or sent again by a later pass
                }
                let line = match self.sent[index].kind {
                    Kind::Row(r) => format!("line {}", self.rows[r].line),
                    Kind::Skip | Kind::Foreign => {
                        format!("nonce {}", self.sent[index].tx.body.nonce)
                    }
                };
                return Err(PassError::Fatal(anyhow::anyhow!(
                    "the node refused the transaction of {line}: {}: {}; nothing after it was sent",
                    error.code,
                    error.message
                )));
            }
        }
        Ok(())
    }

    /// Statuses of our transactions, asked with bounded concurrency, in order.
    async fn statuses(&self, indexes: &[usize]) -> Result<Vec<TxStatusJson>, PassError> {
        let client = &self.client;
        let answers: Vec<(usize, Result<TxStatusJson, crate::ClientError>)> =
            futures::stream::iter(indexes.iter().enumerate())
                .map(|(at, &i)| {
                    let hash = self.sent[i].hash.clone();
                    async move { (at, client.tx_status(&hash).await) }
                })
                .buffer_unordered(STATUS_QUERIES_IN_FLIGHT_MAX)
                .collect()
                .await;
        let mut ordered: Vec<Option<TxStatusJson>> = vec![None; indexes.len()];
        for (at, answer) in answers {
            ordered[at] = Some(answer.map_err(retry)?);
        }
        Ok(ordered.into_iter().flatten().collect())
    }

    /// Every row's outcome, in file order.
    pub fn results(&self) -> Vec<RowResult> {
        self.rows
            .iter()
            .zip(&self.state)
            .map(|(row, state)| self.result(row.line, state))
            .collect()
    }

    fn result(&self, line: u64, state: &RowState) -> RowResult {
        match state {
            RowState::Unsigned => RowResult::NotSent { line },
            RowState::Open(i) => RowResult::Open {
                line,
                hash: self.sent[*i].hash.clone(),
            },
            RowState::Committed { sent, height } => RowResult::Committed {
                line,
                hash: self.sent[*sent].hash.clone(),
                height: *height,
                earlier_run: self.sent[*sent].earlier_run,
                tracking_code: self.sent[*sent].tracking_code.clone(),
            },
            RowState::Refused {
                sent,
                code,
                message,
            } => RowResult::Refused {
                line,
                hash: self.sent[*sent].hash.clone(),
                code: code.clone(),
                message: message.clone(),
            },
        }
    }
}

/// Why a pass stopped.
enum PassError {
    /// The node could not be asked (it may be restarting): the next pass tries again.
    Retry(anyhow::Error),
    /// Nothing more can be sent.
    Fatal(anyhow::Error),
}

fn retry(error: crate::ClientError) -> PassError {
    PassError::Retry(error.into())
}
