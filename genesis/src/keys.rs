//! Key files: what an institution, a node or an agent signs with.
//!
//! A key file is JSON: `{"owner", "public_key", "secret_key"}` with the ed25519 secret as
//! hex, or, protected by a passphrase, `{"owner", "public_key", "encrypted_secret_key"}`
//! with the secret as an encrypted PKCS#8 document (RFC 5958 `EncryptedPrivateKeyInfo`,
//! PBES2 with scrypt and AES-256-CBC, PEM): the format OpenSSL reads
//! (`openssl pkey -in FILE`). The public key stays readable without the passphrase, and is
//! checked against the secret when the file is read.
//!
//! Every secret file (key files, the pseudonym secret, account secrets) must be readable
//! by its owner only (mode 0600 or stricter): reading one that others can read is refused,
//! as ssh refuses a private key that others can read.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use ledger::privacy::SecretKey;
use ledger::types::PublicKey;
use serde::{Deserialize, Serialize};

use crate::GenesisError;

/// The environment variable a passphrase-protected key file's passphrase is read from.
pub const KEY_PASSPHRASE_ENV: &str = "BANSOS_KEY_PASSPHRASE";

/// The fewest characters a passphrase may have when a key is encrypted.
pub const PASSPHRASE_CHARS_MIN: usize = 12;

/// The permission bits of a secret file: read and write by its owner only.
pub const SECRET_FILE_MODE: u32 = 0o600;

/// The most bytes a key or secret file may have (a key file is under 1 KiB).
pub const KEY_FILE_BYTES_MAX: u64 = 64 * 1024;

/// A key file: an ed25519 key pair, the secret as hex or encrypted with a passphrase.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// Who the key belongs to (an organisation id or a node name).
    pub owner: String,
    pub public_key: PublicKey,
    /// The 32-byte secret as hex (an unencrypted key file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    /// The secret as a PEM `ENCRYPTED PRIVATE KEY` (a passphrase-protected key file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_secret_key: Option<String>,
}

impl KeyFile {
    /// An unencrypted key file for `key`.
    pub fn plain(owner: impl Into<String>, key: &SigningKey) -> KeyFile {
        KeyFile {
            owner: owner.into(),
            public_key: public(key),
            secret_key: Some(hex::encode(key.to_bytes())),
            encrypted_secret_key: None,
        }
    }

    /// A key file for `key` with its secret encrypted under `passphrase`.
    pub fn encrypted(
        owner: impl Into<String>,
        key: &SigningKey,
        passphrase: &str,
    ) -> Result<KeyFile, GenesisError> {
        if passphrase.chars().count() < PASSPHRASE_CHARS_MIN {
            return Err(GenesisError::Invalid(format!(
                "a passphrase needs at least {PASSPHRASE_CHARS_MIN} characters"
            )));
        }
        let pem = key
            .to_pkcs8_encrypted_pem(&mut rand::rngs::OsRng, passphrase, Default::default())
            .map_err(|e| GenesisError::Invalid(format!("encrypting the key: {e}")))?;
        Ok(KeyFile {
            owner: owner.into(),
            public_key: public(key),
            secret_key: None,
            encrypted_secret_key: Some(pem.to_string()),
        })
    }

    /// Whether the secret is passphrase-protected.
    pub fn is_encrypted(&self) -> bool {
        self.encrypted_secret_key.is_some()
    }
}

/// A secret file: a 32-byte symmetric key as hex.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretFile {
    pub purpose: String,
    pub secret: String,
}

/// The public key of a signing key.
pub fn public(key: &SigningKey) -> PublicKey {
    PublicKey(key.verifying_key().to_bytes())
}

/// Reads a key file's public part (owner, public key, whether encrypted) without its
/// secret: no passphrase is needed. The file must still be private to its owner.
pub fn read_key_file(path: &Path) -> Result<KeyFile, GenesisError> {
    let text = read_private(path)?;
    let file: KeyFile = serde_json::from_str(&text)
        .map_err(|e| GenesisError::Invalid(format!("{}: not a key file: {e}", path.display())))?;
    match (&file.secret_key, &file.encrypted_secret_key) {
        (Some(_), None) | (None, Some(_)) => Ok(file),
        _ => Err(GenesisError::Invalid(format!(
            "{}: a key file holds exactly one of secret_key and encrypted_secret_key",
            path.display()
        ))),
    }
}

/// Reads an ed25519 key file and checks that its public key matches its secret. An
/// encrypted one is decrypted with the passphrase in [`KEY_PASSPHRASE_ENV`].
pub fn read_key(path: &Path) -> Result<SigningKey, GenesisError> {
    let passphrase = std::env::var(KEY_PASSPHRASE_ENV).ok();
    read_key_with(path, passphrase.as_deref())
}

/// [`read_key`] with the passphrase given (`None`: the file must not be encrypted).
pub fn read_key_with(path: &Path, passphrase: Option<&str>) -> Result<SigningKey, GenesisError> {
    let file = read_key_file(path)?;
    let invalid = |what: &str| GenesisError::Invalid(format!("{}: {what}", path.display()));
    let key = match (&file.secret_key, &file.encrypted_secret_key, passphrase) {
        (Some(hex_secret), _, _) => {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(hex_secret.trim(), &mut bytes)
                .map_err(|_| invalid("secret_key is not 64 hex characters"))?;
            SigningKey::from_bytes(&bytes)
        }
        (None, Some(_), None) => {
            return Err(invalid(&format!(
                "the key is encrypted: set {KEY_PASSPHRASE_ENV} to its passphrase"
            )))
        }
        (None, Some(pem), Some(passphrase)) => {
            SigningKey::from_pkcs8_encrypted_pem(pem, passphrase).map_err(|_| {
                invalid("the passphrase does not open this key (or the key is damaged)")
            })?
        }
        (None, None, _) => unreachable!("read_key_file checked that the file holds a secret"),
    };
    if public(&key) != file.public_key {
        return Err(invalid("public_key does not match the secret key"));
    }
    Ok(key)
}

/// Reads a 32-byte secret file (private to its owner, like a key file).
pub fn read_secret(path: &Path) -> Result<SecretKey, GenesisError> {
    let text = read_private(path)?;
    let file: SecretFile = serde_json::from_str(&text)
        .map_err(|e| GenesisError::Invalid(format!("{}: {e}", path.display())))?;
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(file.secret.trim(), &mut bytes).map_err(|_| {
        GenesisError::Invalid(format!(
            "{}: secret is not 64 hex characters",
            path.display()
        ))
    })?;
    Ok(SecretKey(bytes))
}

/// Writes a new key file with mode 0600 from the start; refuses to replace an existing
/// file (a key that signed on the ledger must not be lost by a typo).
pub fn write_new_key_file(path: &Path, file: &KeyFile) -> Result<(), GenesisError> {
    write_new_private(path, file)
}

/// Writes a new secret file (a 32-byte key as hex) with mode 0600 from the start; refuses
/// to replace an existing file.
pub fn write_new_secret_file(
    path: &Path,
    purpose: &str,
    secret: &SecretKey,
) -> Result<(), GenesisError> {
    let file = SecretFile {
        purpose: purpose.to_owned(),
        secret: hex::encode(secret.0),
    };
    write_new_private(path, &file)
}

fn write_new_private<T: Serialize>(path: &Path, file: &T) -> Result<(), GenesisError> {
    let io = |source| GenesisError::Io {
        path: PathBuf::from(path),
        source,
    };
    let mut text =
        serde_json::to_string_pretty(file).map_err(|e| GenesisError::Invalid(e.to_string()))?;
    text.push('\n');
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(SECRET_FILE_MODE);
    }
    let mut out = options.open(path).map_err(io)?;
    out.write_all(text.as_bytes()).map_err(io)?;
    out.sync_all().map_err(io)
}

/// Reads a secret file's text after checking that only its owner can read it.
fn read_private(path: &Path) -> Result<String, GenesisError> {
    let io = |source| GenesisError::Io {
        path: PathBuf::from(path),
        source,
    };
    let metadata = fs::metadata(path).map_err(io)?;
    if metadata.len() > KEY_FILE_BYTES_MAX {
        return Err(GenesisError::Invalid(format!(
            "{}: {} bytes; a key file has at most {KEY_FILE_BYTES_MAX}",
            path.display(),
            metadata.len()
        )));
    }
    check_private(path, &metadata)?;
    fs::read_to_string(path).map_err(io)
}

#[cfg(unix)]
fn check_private(path: &Path, metadata: &fs::Metadata) -> Result<(), GenesisError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(GenesisError::Invalid(format!(
            "{}: others can read this secret (mode {mode:04o}); run: chmod 600 {}",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _metadata: &fs::Metadata) -> Result<(), GenesisError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn written(dir: &Path, name: &str, file: &KeyFile) -> PathBuf {
        let path = dir.join(name);
        write_new_key_file(&path, file).unwrap();
        path
    }

    #[test]
    fn a_plain_key_file_reads_back_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path(), "a.key", &KeyFile::plain("pemda", &key(1)));
        assert_eq!(read_key_with(&path, None).unwrap().to_bytes(), [1; 32]);
        assert!(!read_key_file(&path).unwrap().is_encrypted());
    }

    #[test]
    fn an_encrypted_key_file_opens_only_with_its_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let file = KeyFile::encrypted("bank", &key(2), "correct horse battery").unwrap();
        assert!(file.secret_key.is_none());
        let path = written(dir.path(), "b.key", &file);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("BEGIN ENCRYPTED PRIVATE KEY"), "{text}");
        assert!(
            !text.contains(&hex::encode([2u8; 32])),
            "the secret is not in clear"
        );
        let opened = read_key_with(&path, Some("correct horse battery")).unwrap();
        assert_eq!(opened.to_bytes(), [2; 32]);
        let wrong = read_key_with(&path, Some("correct horse batterz")).unwrap_err();
        assert!(
            wrong.to_string().contains("passphrase does not open"),
            "{wrong}"
        );
        let missing = read_key_with(&path, None).unwrap_err();
        assert!(
            missing.to_string().contains(KEY_PASSPHRASE_ENV),
            "{missing}"
        );
        // Its public part is readable without the passphrase.
        assert_eq!(read_key_file(&path).unwrap().public_key, public(&key(2)));
    }

    #[test]
    fn a_short_passphrase_is_refused() {
        let error = KeyFile::encrypted("bank", &key(2), "short").unwrap_err();
        assert!(error.to_string().contains("at least 12"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_that_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path(), "c.key", &KeyFile::plain("bpk", &key(3)));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        for mode in [0o640, 0o604, 0o644] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let error = read_key_with(&path, None).unwrap_err();
            assert!(error.to_string().contains("chmod 600"), "{mode:o}: {error}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(read_key_with(&path, None).is_ok());
    }

    #[test]
    fn a_key_file_whose_public_key_is_not_its_secrets_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = KeyFile::plain("pemda", &key(4));
        file.public_key = public(&key(5));
        let path = written(dir.path(), "d.key", &file);
        let error = read_key_with(&path, None).unwrap_err();
        assert!(error.to_string().contains("does not match"), "{error}");
    }

    #[test]
    fn an_existing_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path(), "e.key", &KeyFile::plain("pemda", &key(6)));
        let error = write_new_key_file(&path, &KeyFile::plain("pemda", &key(7))).unwrap_err();
        assert!(matches!(error, GenesisError::Io { .. }), "{error}");
        assert_eq!(read_key_with(&path, None).unwrap().to_bytes(), [6; 32]);
    }

    #[test]
    fn a_file_with_both_or_neither_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut both = KeyFile::plain("x", &key(8));
        both.encrypted_secret_key = Some("pem".into());
        let path = written(dir.path(), "both.key", &both);
        assert!(read_key_file(&path)
            .unwrap_err()
            .to_string()
            .contains("exactly one"));
        let mut neither = KeyFile::plain("x", &key(8));
        neither.secret_key = None;
        let path = written(dir.path(), "neither.key", &neither);
        assert!(read_key_file(&path)
            .unwrap_err()
            .to_string()
            .contains("exactly one"));
    }
}
