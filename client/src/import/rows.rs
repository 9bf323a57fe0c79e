//! Reading an institution's CSV file and checking every row before anything is sent.
//!
//! Each step has its own columns (see `docs/examples/`). Other columns (a name, an address,
//! a phone number) are allowed, read past and never kept. A NIK or an account number stays
//! in memory only until it is turned into a pseudonym or a keyed reference.

use std::collections::HashMap;
use std::path::Path;

use clap::ValueEnum;
use ledger::tx::{PaymentChannel, Verification};
use ledger::types::{Hash32, PeriodCode, ProgramCode, PublicKey, RegionCode};

/// The largest CSV file read, in bytes (a whole province's proposals fit many times over).
pub const IMPORT_FILE_BYTES_MAX: u64 = 512 * 1024 * 1024;
/// The most rows in one file.
pub const IMPORT_ROWS_MAX: usize = 1_000_000;
/// Digits in a NIK (nomor induk kependudukan).
pub const NIK_DIGITS: usize = 16;
/// The most rupiah one row may carry (a typo guard far above any aid amount).
pub const ROW_AMOUNT_MAX: u64 = 1_000_000_000;

/// The steps that come in bulk, one per file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
pub enum ImportStep {
    /// Pemda: households proposed for aid (usul).
    Propose,
    /// Dukcapil or Kemensos: identity check outcomes.
    CheckIdentity,
    /// Pemda: eligibility verification outcomes.
    VerifyEligibility,
    /// Kemensos: enrolments; a tracking code per row goes into the result file.
    Enrol,
    /// Kemensos: allocations of a program period.
    Allocate,
    /// Bank or PT Pos: a disbursement batch.
    Disburse,
}

impl ImportStep {
    /// The step's name as in transactions and the explorer.
    pub fn name(self) -> &'static str {
        match self {
            ImportStep::Propose => "propose",
            ImportStep::CheckIdentity => "check_identity",
            ImportStep::VerifyEligibility => "verify_eligibility",
            ImportStep::Enrol => "enrol",
            ImportStep::Allocate => "allocate",
            ImportStep::Disburse => "disburse",
        }
    }

    /// The columns a file for this step must have.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            ImportStep::Propose => &["nik", "region", "household_size", "welfare_decile"],
            ImportStep::CheckIdentity => &["nik", "passed", "evidence_hash"],
            ImportStep::VerifyEligibility => &["nik", "outcome"],
            ImportStep::Enrol => &["nik", "program"],
            ImportStep::Allocate => &["nik", "program", "period", "amount"],
            ImportStep::Disburse => &[
                "nik",
                "program",
                "period",
                "amount",
                "channel",
                "account_number",
            ],
        }
    }

    /// Columns read when present.
    fn optional_columns(self) -> &'static [&'static str] {
        match self {
            ImportStep::VerifyEligibility => &["reason_code"],
            ImportStep::Enrol => &["beneficiary_key"],
            _ => &[],
        }
    }
}

/// One checked row: what the step needs, personal data still in the clear (in memory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The row's line in the file (the header is line 1).
    pub line: u64,
    pub nik: String,
    pub fields: RowFields,
}

/// The step-specific part of a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowFields {
    Propose {
        region: RegionCode,
        household_size: u8,
        welfare_decile: u8,
    },
    CheckIdentity {
        passed: bool,
        evidence_hash: Hash32,
    },
    VerifyEligibility {
        outcome: Verification,
    },
    Enrol {
        program: ProgramCode,
        beneficiary_key: Option<PublicKey>,
    },
    Allocate {
        program: ProgramCode,
        period: PeriodCode,
        amount: u64,
    },
    Disburse {
        program: ProgramCode,
        period: PeriodCode,
        amount: u64,
        channel: PaymentChannel,
        account_number: String,
    },
}

/// Why a row (or the whole file) cannot be imported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("line {line}: {column}: {message}")]
    Field {
        line: u64,
        column: &'static str,
        message: String,
    },
    #[error("line {line}: the same {what} as line {first}; each may appear once per file")]
    Repeated {
        line: u64,
        first: u64,
        what: &'static str,
    },
    #[error("line {line}: not a CSV record: {message}")]
    Record { line: u64, message: String },
}

/// Why the file as a whole cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is {bytes} bytes; at most {IMPORT_FILE_BYTES_MAX} bytes per file: split it")]
    TooLarge { path: String, bytes: u64 },
    #[error("{path} has more than {IMPORT_ROWS_MAX} rows: split it")]
    TooManyRows { path: String },
    #[error("{path}: the header lacks column(s) {missing:?} for step {step}; it needs {needed:?}")]
    MissingColumns {
        path: String,
        step: &'static str,
        missing: Vec<&'static str>,
        needed: &'static [&'static str],
    },
    #[error("{path}: the header names column {column:?} twice")]
    DuplicateColumn { path: String, column: String },
    #[error("{path}: no header line")]
    NoHeader { path: String },
    #[error("{path}: no rows after the header")]
    Empty { path: String },
    #[error("{count} row(s) of {path} have errors; nothing was sent:\n{list}")]
    BadRows {
        path: String,
        count: usize,
        list: String,
        errors: Vec<RowError>,
    },
}

/// The most row errors listed in one message (all are counted).
const ROW_ERRORS_LISTED_MAX: usize = 100;

/// Reads and checks every row of `path` for `step`. Either every row is good, or the
/// error lists each bad one.
pub fn read_rows(path: &Path, step: ImportStep) -> Result<Vec<Row>, FileError> {
    let shown = path.display().to_string();
    let io = |source| FileError::Io {
        path: shown.clone(),
        source,
    };
    let bytes_len = std::fs::metadata(path).map_err(io)?.len();
    if bytes_len > IMPORT_FILE_BYTES_MAX {
        return Err(FileError::TooLarge {
            path: shown,
            bytes: bytes_len,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    parse_rows(&bytes, step, &shown)
}

/// Checks every row of CSV `bytes` (see [`read_rows`]).
pub fn parse_rows(bytes: &[u8], step: ImportStep, path: &str) -> Result<Vec<Row>, FileError> {
    // Spreadsheets often save a byte-order mark first.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter(bytes))
        .trim(csv::Trim::All)
        // A row with more or fewer cells than the header (an unquoted comma in an
        // address) is refused: its cells would be read under the wrong columns.
        .flexible(false)
        .from_reader(bytes);
    let columns = header_columns(&mut reader, step, path)?;
    // Line numbers as a text editor shows them (the csv crate does not count blank lines).
    let line_starts: Vec<usize> = std::iter::once(0).chain(memchr_newlines(bytes)).collect();
    // A record's position may be that of blank lines before it.
    let line_of = |byte: u64| {
        let mut at = byte as usize;
        while matches!(bytes.get(at), Some(b'\n' | b'\r')) {
            at += 1;
        }
        line_starts.partition_point(|&start| start <= at) as u64
    };
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, record) in reader.records().enumerate() {
        if i >= IMPORT_ROWS_MAX {
            return Err(FileError::TooManyRows {
                path: path.to_owned(),
            });
        }
        let fallback_line = i as u64 + 2;
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                errors.push(RowError::Record {
                    line: fallback_line,
                    message: e.to_string(),
                });
                continue;
            }
        };
        let line = record
            .position()
            .map_or(fallback_line, |p| line_of(p.byte()));
        if record.iter().all(str::is_empty) {
            continue; // a blank line
        }
        match parse_row(step, &columns, &record, line) {
            Ok(row) => rows.push(row),
            Err(error) => errors.push(error),
        }
    }
    errors.extend(repeated_subjects(&rows));
    if !errors.is_empty() {
        return Err(bad_rows(path, errors));
    }
    if rows.is_empty() {
        return Err(FileError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(rows)
}

/// The offsets just after each newline.
fn memchr_newlines(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
}

fn bad_rows(path: &str, mut errors: Vec<RowError>) -> FileError {
    errors.sort_by_key(|e| match e {
        RowError::Field { line, .. }
        | RowError::Repeated { line, .. }
        | RowError::Record { line, .. } => *line,
    });
    let mut list: Vec<String> = errors
        .iter()
        .take(ROW_ERRORS_LISTED_MAX)
        .map(|e| format!("  {e}"))
        .collect();
    if errors.len() > ROW_ERRORS_LISTED_MAX {
        list.push(format!(
            "  … and {} more",
            errors.len() - ROW_ERRORS_LISTED_MAX
        ));
    }
    FileError::BadRows {
        path: path.to_owned(),
        count: errors.len(),
        list: list.join("\n"),
        errors,
    }
}

/// Comma, or semicolon when the header uses it (spreadsheets saved in an Indonesian
/// locale write `;`, as the comma is the decimal mark there).
fn delimiter(bytes: &[u8]) -> u8 {
    let header = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    if header.contains(&b';') && !header.contains(&b',') {
        b';'
    } else {
        b','
    }
}

/// The position of each known column in the header.
fn header_columns(
    reader: &mut csv::Reader<&[u8]>,
    step: ImportStep,
    path: &str,
) -> Result<HashMap<&'static str, usize>, FileError> {
    let header = reader.headers().map_err(|_| FileError::NoHeader {
        path: path.to_owned(),
    })?;
    if header.iter().all(str::is_empty) {
        return Err(FileError::NoHeader {
            path: path.to_owned(),
        });
    }
    let mut seen = std::collections::HashSet::new();
    let mut columns = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.to_ascii_lowercase();
        if !seen.insert(name.clone()) {
            return Err(FileError::DuplicateColumn {
                path: path.to_owned(),
                column: name,
            });
        }
        let known = step
            .columns()
            .iter()
            .chain(step.optional_columns())
            .find(|c| **c == name);
        if let Some(column) = known {
            columns.insert(*column, i);
        }
    }
    let missing: Vec<&'static str> = step
        .columns()
        .iter()
        .filter(|c| !columns.contains_key(*c))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(FileError::MissingColumns {
            path: path.to_owned(),
            step: step.name(),
            missing,
            needed: step.columns(),
        });
    }
    Ok(columns)
}

/// One row's cells by column name.
struct Cells<'a> {
    columns: &'a HashMap<&'static str, usize>,
    record: &'a csv::StringRecord,
    line: u64,
}

impl Cells<'_> {
    fn get(&self, column: &'static str) -> &str {
        self.columns
            .get(column)
            .and_then(|i| self.record.get(*i))
            .unwrap_or("")
    }

    fn error(&self, column: &'static str, message: impl Into<String>) -> RowError {
        RowError::Field {
            line: self.line,
            column,
            message: message.into(),
        }
    }

    fn required(&self, column: &'static str) -> Result<&str, RowError> {
        match self.get(column) {
            "" => Err(self.error(column, "empty")),
            text => Ok(text),
        }
    }

    fn number<T>(
        &self,
        column: &'static str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, RowError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
    {
        let text = self.required(column)?;
        let out_of_range = || {
            self.error(
                column,
                format!(
                    "{text:?} is not a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        };
        let value: T = text.parse().map_err(|_| out_of_range())?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(out_of_range())
        }
    }

    fn code<T, E: std::fmt::Display>(
        &self,
        column: &'static str,
        parse: impl Fn(String) -> Result<T, E>,
    ) -> Result<T, RowError> {
        let text = self.required(column)?;
        parse(text.to_owned()).map_err(|e| self.error(column, format!("{text:?}: {e}")))
    }

    fn yes_no(&self, column: &'static str) -> Result<bool, RowError> {
        match self.required(column)?.to_ascii_lowercase().as_str() {
            "true" | "yes" | "ya" | "1" => Ok(true),
            "false" | "no" | "tidak" | "0" => Ok(false),
            other => Err(self.error(column, format!("{other:?}: write true or false"))),
        }
    }

    fn hash(&self, column: &'static str) -> Result<Hash32, RowError> {
        let text = self.required(column)?;
        Hash32::from_hex(text)
            .map_err(|_| self.error(column, format!("{text:?} is not 64 hexadecimal digits")))
    }
}

fn parse_row(
    step: ImportStep,
    columns: &HashMap<&'static str, usize>,
    record: &csv::StringRecord,
    line: u64,
) -> Result<Row, RowError> {
    let cells = Cells {
        columns,
        record,
        line,
    };
    let nik = normalise_nik(cells.required("nik")?).map_err(|m| cells.error("nik", m))?;
    let fields = match step {
        ImportStep::Propose => RowFields::Propose {
            region: cells.code("region", RegionCode::new)?,
            household_size: cells
                .number("household_size", 1..=ledger::limits::HOUSEHOLD_SIZE_MAX)?,
            welfare_decile: cells.number("welfare_decile", 1..=10)?,
        },
        ImportStep::CheckIdentity => RowFields::CheckIdentity {
            passed: cells.yes_no("passed")?,
            evidence_hash: cells.hash("evidence_hash")?,
        },
        ImportStep::VerifyEligibility => RowFields::VerifyEligibility {
            outcome: verification(&cells)?,
        },
        ImportStep::Enrol => RowFields::Enrol {
            program: cells.code("program", ProgramCode::new)?,
            beneficiary_key: beneficiary_key(&cells)?,
        },
        ImportStep::Allocate => RowFields::Allocate {
            program: cells.code("program", ProgramCode::new)?,
            period: cells.code("period", PeriodCode::new)?,
            amount: cells.number("amount", 1..=ROW_AMOUNT_MAX)?,
        },
        ImportStep::Disburse => disbursement(&cells)?,
    };
    Ok(Row { line, nik, fields })
}

fn verification(cells: &Cells<'_>) -> Result<Verification, RowError> {
    match cells.required("outcome")?.to_ascii_lowercase().as_str() {
        "verified" => Ok(Verification::Verified),
        "rejected" => Ok(Verification::Rejected {
            reason_code: cells.number("reason_code", 1..=u16::MAX)?,
        }),
        other => Err(cells.error("outcome", format!("{other:?}: write verified or rejected"))),
    }
}

fn beneficiary_key(cells: &Cells<'_>) -> Result<Option<PublicKey>, RowError> {
    match cells.get("beneficiary_key") {
        "" => Ok(None),
        text => PublicKey::from_hex(text).map(Some).map_err(|_| {
            cells.error(
                "beneficiary_key",
                format!("{text:?} is not a public key (64 hexadecimal digits)"),
            )
        }),
    }
}

fn disbursement(cells: &Cells<'_>) -> Result<RowFields, RowError> {
    let channel = match cells.required("channel")?.to_ascii_lowercase().as_str() {
        "bank_account" => PaymentChannel::BankAccount,
        "pos_cash" => PaymentChannel::PosCash,
        "agent" => PaymentChannel::Agent,
        other => {
            return Err(cells.error(
                "channel",
                format!("{other:?}: write bank_account, pos_cash or agent"),
            ))
        }
    };
    let account_number = cells.required("account_number")?;
    let digits = account_number
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .count();
    if !(6..=34).contains(&digits) {
        return Err(cells.error(
            "account_number",
            "an account or card number has 6 to 34 letters and digits",
        ));
    }
    Ok(RowFields::Disburse {
        program: cells.code("program", ProgramCode::new)?,
        period: cells.code("period", PeriodCode::new)?,
        amount: cells.number("amount", 1..=ROW_AMOUNT_MAX)?,
        channel,
        account_number: account_number.to_owned(),
    })
}

/// A NIK with spaces, dots and hyphens taken out, checked for its shape: 16 digits, a
/// province code (11–94), and a birth date (day 01–31, or 41–71 for women; month 01–12).
pub fn normalise_nik(text: &str) -> Result<String, String> {
    let digits: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.'))
        .collect();
    if digits.len() != NIK_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("a NIK has {NIK_DIGITS} digits"));
    }
    let two = |at: usize| -> u32 {
        let pair = &digits.as_bytes()[at..at + 2];
        u32::from(pair[0] - b'0') * 10 + u32::from(pair[1] - b'0')
    };
    if !(11..=94).contains(&two(0)) {
        return Err("a NIK starts with a province code from 11 to 94".into());
    }
    let (day, month) = (two(6), two(8));
    if !((1..=31).contains(&day) || (41..=71).contains(&day)) || !(1..=12).contains(&month) {
        return Err("digits 7 to 10 of a NIK are a birth day and month".into());
    }
    Ok(digits)
}

/// What may appear only once per file for a step: the ledger takes one proposal, check
/// or verification per person, one enrolment per person and program, one allocation or
/// payment per person, program and period.
fn subject(row: &Row) -> (String, &'static str) {
    match &row.fields {
        RowFields::Propose { .. }
        | RowFields::CheckIdentity { .. }
        | RowFields::VerifyEligibility { .. } => (row.nik.clone(), "NIK"),
        RowFields::Enrol { program, .. } => (format!("{}/{program}", row.nik), "NIK and program"),
        RowFields::Allocate {
            program, period, ..
        }
        | RowFields::Disburse {
            program, period, ..
        } => (
            format!("{}/{program}/{period}", row.nik),
            "NIK, program and period",
        ),
    }
}

fn repeated_subjects(rows: &[Row]) -> Vec<RowError> {
    let mut first: HashMap<String, u64> = HashMap::new();
    let mut errors = Vec::new();
    for row in rows {
        let (key, what) = subject(row);
        if let Some(&line) = first.get(&key) {
            errors.push(RowError::Repeated {
                line: row.line,
                first: line,
                what,
            });
        } else {
            first.insert(key, row.line);
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "nama,nik,region,household_size,welfare_decile\n";

    fn propose(body: &str) -> Result<Vec<Row>, FileError> {
        parse_rows(
            format!("{HEADER}{body}").as_bytes(),
            ImportStep::Propose,
            "t.csv",
        )
    }

    #[test]
    fn good_rows_are_read_and_other_columns_are_not_kept() {
        let rows = propose(
            "Siti Aminah,3510 0145 0190 0001,35.10.01.2001,4,2\n\nBudi,3510-0112-0385-0002,35.10.01.2002,1,10\n",
        )
        .expect("good rows");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].nik, "3510014501900001");
        assert_eq!(rows[1].line, 4, "lines count the header and the blank line");
        assert!(!format!("{rows:?}").contains("Siti"), "a name was kept");
    }

    #[test]
    fn a_semicolon_file_with_a_byte_order_mark_is_read() {
        let text = "\u{feff}NIK;Region;Household_Size;Welfare_Decile\n3510014501900001;35.10.01.2001;4;2\n";
        let rows = parse_rows(text.as_bytes(), ImportStep::Propose, "t.csv").expect("rows");
        assert_eq!(rows[0].nik, "3510014501900001");
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line_and_column() {
        let error = propose(concat!(
            "a,351001450190000,35.10.01.2001,4,2\n",
            "b,3510014501900002,35.10.01.2001,0,2\n",
            "c,3510014501900003,nowhere,4,2\n",
            "d,3510014501900004,35.10.01.2001,4,11\n",
            "e,3510014501900005,35.10.01.2001,4,2\n",
            "f,3510 0145 0190 0005,35.10.01.2002,3,3\n",
            "g,3510019901900007,35.10.01.2001,4,2\n",
        ))
        .expect_err("bad rows");
        let FileError::BadRows { errors, count, .. } = error else {
            panic!("{error}")
        };
        assert_eq!(count, 6);
        let described: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(described[0].starts_with("line 2: nik:"), "{described:?}");
        assert!(
            described[1].starts_with("line 3: household_size:"),
            "{described:?}"
        );
        assert!(described[2].starts_with("line 4: region:"), "{described:?}");
        assert!(
            described[3].starts_with("line 5: welfare_decile:"),
            "{described:?}"
        );
        assert_eq!(
            errors[4],
            RowError::Repeated {
                line: 7,
                first: 6,
                what: "NIK"
            }
        );
        assert!(described[5].starts_with("line 8: nik:"), "{described:?}");
    }

    #[test]
    fn a_row_with_a_stray_comma_is_refused_without_echoing_its_cells() {
        let error = propose("Siti, Jl. Melati 3,3510014501900001,35.10.01.2001,4,2\n")
            .expect_err("six cells under five columns");
        let text = error.to_string();
        assert!(text.contains("line 2"), "{text}");
        assert!(
            !text.contains("3510014501900001") && !text.contains("Melati"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_column_is_named() {
        let error = parse_rows(
            b"nik,amount\n3510014501900001,5\n",
            ImportStep::Disburse,
            "t.csv",
        )
        .expect_err("columns missing");
        let FileError::MissingColumns { missing, .. } = error else {
            panic!("{error}")
        };
        assert_eq!(
            missing,
            vec!["program", "period", "channel", "account_number"]
        );
    }

    /// The example files in docs/examples/ (named after their step) stay readable.
    #[test]
    fn the_example_files_are_read_without_errors() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples");
        let mut seen = 0;
        for step in ImportStep::value_variants() {
            let name = step
                .to_possible_value()
                .expect("a name")
                .get_name()
                .to_owned();
            let rows = read_rows(&dir.join(format!("{name}.csv")), *step)
                .unwrap_or_else(|e| panic!("{name}.csv: {e}"));
            assert!(!rows.is_empty());
            seen += 1;
        }
        assert_eq!(seen, 6);
    }

    #[test]
    fn nik_shapes() {
        assert!(normalise_nik("3510014501900001").is_ok());
        assert!(
            normalise_nik("3510015501900001").is_ok(),
            "a woman's day + 40"
        );
        assert!(normalise_nik("0910014501900001").is_err(), "province 09");
        assert!(normalise_nik("3510013201900001").is_err(), "day 32");
        assert!(normalise_nik("3510014513900001").is_err(), "month 13");
        assert!(normalise_nik("35100145019000a1").is_err());
    }

    #[test]
    fn a_rejection_needs_its_reason() {
        let error = parse_rows(
            b"nik,outcome,reason_code\n3510014501900001,rejected,\n",
            ImportStep::VerifyEligibility,
            "t.csv",
        )
        .expect_err("no reason");
        assert!(
            error.to_string().contains("line 2: reason_code: empty"),
            "{error}"
        );
    }
}
