//! The wire and WAL encoding of every Malachite message this chain sends or logs.
//!
//! One codec serves the three roles Malachite asks for (consensus gossip, value sync and the
//! write-ahead log). The format is hand-written, big-endian, length-prefixed and versioned
//! by a leading byte, because Malachite's types carry no serialisation of their own and the
//! WAL must stay readable across upgrades. Decoding never panics and caps every length:
//! these bytes come from the network.

use std::ops::RangeInclusive;

use arc_malachitebft_app_channel::app::consensus::LivenessMsg;
use arc_malachitebft_app_channel::app::streaming::StreamContent;
use arc_malachitebft_app_channel::app::types::codec::{Codec, HasEncodedLen};
use arc_malachitebft_app_channel::app::types::core::{
    ExtendedCommitCertificate, ExtendedCommitSignature, NilOrVal, PolkaCertificate, PolkaSignature,
    Round, RoundCertificate, RoundCertificateType, RoundSignature, SignedMessage, ValidatorProof,
    Validity, VoteType,
};
use arc_malachitebft_app_channel::app::types::streaming::{StreamId, StreamMessage};
use arc_malachitebft_app_channel::app::types::sync::{RawDecidedValue, Request, Response, Status};
use arc_malachitebft_app_channel::app::types::{PeerId, ProposedValue, SignedConsensusMsg};
use arc_malachitebft_sync::{ValueRequest, ValueResponse};
use bytes::Bytes;
use ledger::types::{Hash32, PublicKey};

use super::types::{
    BansosContext, BlockHeight, BlockId, ConsensusSignature, Proposal, ProposalPart,
    ValidatorAddress, Vote,
};

/// The format version, first byte of every encoding.
const FORMAT_VERSION: u8 = 1;
/// The largest byte string inside a message (a block chunk, a synced block).
pub const FIELD_BYTES_MAX: usize = 8 * 1024 * 1024;
/// The most entries in any list inside a message (signatures, synced values).
pub const LIST_ENTRIES_MAX: usize = 10_000;

/// Bytes that do not decode as the expected message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("consensus message does not decode: {0}")]
pub struct CodecError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, CodecError> {
    Err(CodecError(message.into()))
}

/// The codec for consensus, sync and WAL messages.
#[derive(Clone, Copy, Debug, Default)]
pub struct BansosCodec;

/// Appends fields.
struct Writer(Vec<u8>);

impl Writer {
    fn new() -> Self {
        Writer(vec![FORMAT_VERSION])
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn round(&mut self, round: Round) {
        self.0.extend_from_slice(&round.as_i64().to_be_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u64(v.len() as u64);
        self.0.extend_from_slice(v);
    }
    fn fixed(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    fn address(&mut self, a: &ValidatorAddress) {
        self.fixed(a.0.as_bytes());
    }
    fn signature(&mut self, s: &ConsensusSignature) {
        self.fixed(&s.0);
    }
    fn block_id(&mut self, id: &BlockId) {
        self.fixed(id.0.as_bytes());
    }
    fn nil_or_val(&mut self, v: &NilOrVal<BlockId>) {
        match v {
            NilOrVal::Nil => self.u8(0),
            NilOrVal::Val(id) => {
                self.u8(1);
                self.block_id(id);
            }
        }
    }
    fn vote_type(&mut self, t: VoteType) {
        self.u8(match t {
            VoteType::Prevote => 0,
            VoteType::Precommit => 1,
        });
    }
    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    fn finish(self) -> Bytes {
        Bytes::from(self.0)
    }
}

/// Reads fields, refusing anything malformed.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, CodecError> {
        match bytes.split_first() {
            Some((&FORMAT_VERSION, rest)) => Ok(Reader { bytes: rest }),
            Some((version, _)) => err(format!("unknown format version {version}")),
            None => err("empty message"),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.bytes.len() < n {
            return err("truncated");
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let slice = self.take(N)?;
        slice.try_into().map_err(|_| CodecError("truncated".into()))
    }
    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn height(&mut self) -> Result<BlockHeight, CodecError> {
        Ok(BlockHeight(self.u64()?))
    }
    fn round(&mut self) -> Result<Round, CodecError> {
        // Malachite's `Round::from(i64)` asserts; check the range here instead.
        match i64::from_be_bytes(self.array()?) {
            -1 => Ok(Round::Nil),
            r if (0..=i64::from(u32::MAX)).contains(&r) => Ok(Round::new(r as u32)),
            r => err(format!("round {r} out of range")),
        }
    }
    fn len(&mut self, max: usize) -> Result<usize, CodecError> {
        let n = self.u64()?;
        if n > max as u64 {
            return err(format!("length {n} exceeds the limit {max}"));
        }
        Ok(n as usize)
    }
    fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.len(FIELD_BYTES_MAX)?;
        self.take(n)
    }
    fn address(&mut self) -> Result<ValidatorAddress, CodecError> {
        Ok(ValidatorAddress(PublicKey(self.array()?)))
    }
    fn signature(&mut self) -> Result<ConsensusSignature, CodecError> {
        Ok(ConsensusSignature(self.array()?))
    }
    fn block_id(&mut self) -> Result<BlockId, CodecError> {
        Ok(BlockId(Hash32(self.array()?)))
    }
    fn nil_or_val(&mut self) -> Result<NilOrVal<BlockId>, CodecError> {
        match self.u8()? {
            0 => Ok(NilOrVal::Nil),
            1 => Ok(NilOrVal::Val(self.block_id()?)),
            t => err(format!("bad nil-or-value tag {t}")),
        }
    }
    fn vote_type(&mut self) -> Result<VoteType, CodecError> {
        match self.u8()? {
            0 => Ok(VoteType::Prevote),
            1 => Ok(VoteType::Precommit),
            t => err(format!("bad vote type {t}")),
        }
    }
    fn finish(self) -> Result<(), CodecError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            err(format!("{} trailing bytes", self.bytes.len()))
        }
    }
}

// --- Field groups shared by several messages ---------------------------------------------------

fn write_vote(w: &mut Writer, signed: &SignedMessage<BansosContext, Vote>) {
    let vote = &signed.message;
    w.vote_type(vote.vote_type);
    w.u64(vote.height.0);
    w.round(vote.round);
    w.nil_or_val(&vote.value);
    w.address(&vote.voter);
    match &vote.extension {
        None => w.u8(0),
        Some(extension) => {
            w.u8(1);
            w.signature(&extension.signature);
        }
    }
    w.signature(&signed.signature);
}

fn read_vote(r: &mut Reader<'_>) -> Result<SignedMessage<BansosContext, Vote>, CodecError> {
    let vote_type = r.vote_type()?;
    let height = r.height()?;
    let round = r.round()?;
    let value = r.nil_or_val()?;
    let voter = r.address()?;
    let extension = match r.u8()? {
        0 => None,
        1 => Some(SignedMessage::new((), r.signature()?)),
        t => return err(format!("bad extension tag {t}")),
    };
    let signature = r.signature()?;
    Ok(SignedMessage::new(
        Vote {
            vote_type,
            height,
            round,
            value,
            voter,
            extension,
        },
        signature,
    ))
}

fn write_proposal(w: &mut Writer, signed: &SignedMessage<BansosContext, Proposal>) {
    let p = &signed.message;
    w.u64(p.height.0);
    w.round(p.round);
    w.block_id(&p.value);
    w.round(p.pol_round);
    w.address(&p.proposer);
    w.signature(&signed.signature);
}

fn read_proposal(r: &mut Reader<'_>) -> Result<SignedMessage<BansosContext, Proposal>, CodecError> {
    let height = r.height()?;
    let round = r.round()?;
    let value = r.block_id()?;
    let pol_round = r.round()?;
    let proposer = r.address()?;
    let signature = r.signature()?;
    Ok(SignedMessage::new(
        Proposal {
            height,
            round,
            value,
            pol_round,
            proposer,
        },
        signature,
    ))
}

fn write_part(w: &mut Writer, part: &ProposalPart) {
    match part {
        ProposalPart::Init {
            height,
            round,
            pol_round,
            proposer,
        } => {
            w.u8(0);
            w.u64(height.0);
            w.round(*round);
            w.round(*pol_round);
            w.address(proposer);
        }
        ProposalPart::Chunk(bytes) => {
            w.u8(1);
            w.bytes(bytes);
        }
        ProposalPart::Fin { signature } => {
            w.u8(2);
            w.signature(signature);
        }
    }
}

fn read_part(r: &mut Reader<'_>) -> Result<ProposalPart, CodecError> {
    match r.u8()? {
        0 => Ok(ProposalPart::Init {
            height: r.height()?,
            round: r.round()?,
            pol_round: r.round()?,
            proposer: r.address()?,
        }),
        1 => Ok(ProposalPart::Chunk(r.bytes()?.to_vec())),
        2 => Ok(ProposalPart::Fin {
            signature: r.signature()?,
        }),
        t => err(format!("bad proposal part tag {t}")),
    }
}

fn write_polka(w: &mut Writer, c: &PolkaCertificate<BansosContext>) {
    w.u64(c.height.0);
    w.round(c.round);
    w.block_id(&c.value_id);
    w.len(c.polka_signatures.len());
    for s in &c.polka_signatures {
        w.address(&s.address);
        w.signature(&s.signature);
    }
}

fn read_polka(r: &mut Reader<'_>) -> Result<PolkaCertificate<BansosContext>, CodecError> {
    let height = r.height()?;
    let round = r.round()?;
    let value_id = r.block_id()?;
    let n = r.len(LIST_ENTRIES_MAX)?;
    let mut polka_signatures = Vec::with_capacity(n);
    for _ in 0..n {
        polka_signatures.push(PolkaSignature::new(r.address()?, r.signature()?));
    }
    Ok(PolkaCertificate {
        height,
        round,
        value_id,
        polka_signatures,
    })
}

fn write_round_certificate(w: &mut Writer, c: &RoundCertificate<BansosContext>) {
    w.u64(c.height.0);
    w.round(c.round);
    w.u8(match c.cert_type {
        RoundCertificateType::Skip => 0,
        RoundCertificateType::Precommit => 1,
    });
    w.len(c.round_signatures.len());
    for s in &c.round_signatures {
        w.vote_type(s.vote_type);
        w.nil_or_val(&s.value_id);
        w.address(&s.address);
        w.signature(&s.signature);
    }
}

fn read_round_certificate(
    r: &mut Reader<'_>,
) -> Result<RoundCertificate<BansosContext>, CodecError> {
    let height = r.height()?;
    let round = r.round()?;
    let cert_type = match r.u8()? {
        0 => RoundCertificateType::Skip,
        1 => RoundCertificateType::Precommit,
        t => return err(format!("bad round certificate type {t}")),
    };
    let n = r.len(LIST_ENTRIES_MAX)?;
    let mut round_signatures = Vec::with_capacity(n);
    for _ in 0..n {
        round_signatures.push(RoundSignature::new(
            r.vote_type()?,
            r.nil_or_val()?,
            r.address()?,
            r.signature()?,
        ));
    }
    Ok(RoundCertificate {
        height,
        round,
        cert_type,
        round_signatures,
    })
}

fn write_extended_certificate(w: &mut Writer, c: &ExtendedCommitCertificate<BansosContext>) {
    w.u64(c.height.0);
    w.round(c.round);
    w.block_id(&c.value_id);
    w.len(c.commit_signatures.len());
    for s in &c.commit_signatures {
        w.address(&s.address);
        w.signature(&s.signature);
        match &s.extension {
            None => w.u8(0),
            Some(extension) => {
                w.u8(1);
                w.signature(&extension.signature);
            }
        }
    }
}

fn read_extended_certificate(
    r: &mut Reader<'_>,
) -> Result<ExtendedCommitCertificate<BansosContext>, CodecError> {
    let height = r.height()?;
    let round = r.round()?;
    let value_id = r.block_id()?;
    let n = r.len(LIST_ENTRIES_MAX)?;
    let mut commit_signatures = Vec::with_capacity(n);
    for _ in 0..n {
        let address = r.address()?;
        let signature = r.signature()?;
        let extension = match r.u8()? {
            0 => None,
            1 => Some(SignedMessage::new((), r.signature()?)),
            t => return err(format!("bad extension tag {t}")),
        };
        commit_signatures.push(ExtendedCommitSignature {
            address,
            signature,
            extension,
        });
    }
    Ok(ExtendedCommitCertificate {
        height,
        round,
        value_id,
        commit_signatures,
    })
}

/// Implements `Codec<T>` from a writer and a reader function.
macro_rules! codec {
    ($t:ty, $write:expr, $read:expr) => {
        impl Codec<$t> for BansosCodec {
            type Error = CodecError;

            fn decode(&self, bytes: Bytes) -> Result<$t, CodecError> {
                let mut reader = Reader::new(&bytes)?;
                let read: fn(&mut Reader<'_>) -> Result<$t, CodecError> = $read;
                let value = read(&mut reader)?;
                reader.finish()?;
                Ok(value)
            }

            fn encode(&self, message: &$t) -> Result<Bytes, CodecError> {
                let mut writer = Writer::new();
                let write: fn(&mut Writer, &$t) = $write;
                write(&mut writer, message);
                Ok(writer.finish())
            }
        }
    };
}

codec!(ProposalPart, write_part, read_part);

codec!(
    SignedConsensusMsg<BansosContext>,
    |w, m| match m {
        SignedConsensusMsg::Vote(v) => {
            w.u8(0);
            write_vote(w, v);
        }
        SignedConsensusMsg::Proposal(p) => {
            w.u8(1);
            write_proposal(w, p);
        }
    },
    |r| match r.u8()? {
        0 => Ok(SignedConsensusMsg::Vote(read_vote(r)?)),
        1 => Ok(SignedConsensusMsg::Proposal(read_proposal(r)?)),
        t => err(format!("bad consensus message tag {t}")),
    }
);

codec!(
    LivenessMsg<BansosContext>,
    |w, m| match m {
        LivenessMsg::Vote(v) => {
            w.u8(0);
            write_vote(w, v);
        }
        LivenessMsg::PolkaCertificate(c) => {
            w.u8(1);
            write_polka(w, c);
        }
        LivenessMsg::SkipRoundCertificate(c) => {
            w.u8(2);
            write_round_certificate(w, c);
        }
    },
    |r| match r.u8()? {
        0 => Ok(LivenessMsg::Vote(read_vote(r)?)),
        1 => Ok(LivenessMsg::PolkaCertificate(read_polka(r)?)),
        2 => Ok(LivenessMsg::SkipRoundCertificate(read_round_certificate(
            r
        )?)),
        t => err(format!("bad liveness message tag {t}")),
    }
);

codec!(
    StreamMessage<ProposalPart>,
    |w, m| {
        w.bytes(&m.stream_id.to_bytes());
        w.u64(m.sequence);
        match &m.content {
            StreamContent::Data(part) => {
                w.u8(0);
                write_part(w, part);
            }
            StreamContent::Fin => w.u8(1),
        }
    },
    |r| {
        let stream_id = StreamId::new(Bytes::copy_from_slice(r.bytes()?));
        let sequence = r.u64()?;
        let content = match r.u8()? {
            0 => StreamContent::Data(read_part(r)?),
            1 => StreamContent::Fin,
            t => return err(format!("bad stream content tag {t}")),
        };
        Ok(StreamMessage::new(stream_id, sequence, content))
    }
);

codec!(
    ValidatorProof<BansosContext>,
    |w, p| {
        w.bytes(&p.public_key);
        w.bytes(&p.peer_id);
        w.signature(&p.signature);
    },
    |r| {
        let public_key = r.bytes()?.to_vec();
        let peer_id = r.bytes()?.to_vec();
        Ok(ValidatorProof::new(public_key, peer_id, r.signature()?))
    }
);

fn read_peer_id(r: &mut Reader<'_>) -> Result<PeerId, CodecError> {
    PeerId::from_bytes(r.bytes()?).map_err(|e| CodecError(format!("bad peer id: {e}")))
}

codec!(
    Status<BansosContext>,
    |w, s| {
        w.bytes(&s.peer_id.to_bytes());
        w.u64(s.tip_height.0);
        w.u64(s.history_min_height.0);
    },
    |r| Ok(Status {
        peer_id: read_peer_id(r)?,
        tip_height: r.height()?,
        history_min_height: r.height()?
    })
);

codec!(
    Request<BansosContext>,
    |w, m| match m {
        Request::ValueRequest(request) => {
            w.u8(0);
            w.u64(request.range.start().0);
            w.u64(request.range.end().0);
        }
    },
    |r| match r.u8()? {
        0 => {
            let range: RangeInclusive<BlockHeight> = r.height()?..=r.height()?;
            Ok(Request::ValueRequest(ValueRequest::new(range)))
        }
        t => err(format!("bad sync request tag {t}")),
    }
);

codec!(
    Response<BansosContext>,
    |w, m| match m {
        Response::ValueResponse(response) => {
            w.u8(0);
            w.u64(response.start_height.0);
            w.len(response.values.len());
            for value in &response.values {
                w.bytes(&value.value_bytes);
                write_extended_certificate(w, &value.certificate);
            }
        }
    },
    |r| match r.u8()? {
        0 => {
            let start_height = r.height()?;
            let n = r.len(LIST_ENTRIES_MAX)?;
            let mut values = Vec::with_capacity(n.min(64));
            for _ in 0..n {
                let value_bytes = Bytes::copy_from_slice(r.bytes()?);
                values.push(RawDecidedValue::new(
                    value_bytes,
                    read_extended_certificate(r)?,
                ));
            }
            Ok(Response::ValueResponse(ValueResponse {
                start_height,
                values,
            }))
        }
        t => err(format!("bad sync response tag {t}")),
    }
);

impl HasEncodedLen<Response<BansosContext>> for BansosCodec {
    fn encoded_len(&self, message: &Response<BansosContext>) -> Result<usize, CodecError> {
        Ok(self.encode(message)?.len())
    }
}

codec!(
    ProposedValue<BansosContext>,
    |w, v| {
        w.u64(v.height.0);
        w.round(v.round);
        w.round(v.valid_round);
        w.address(&v.proposer);
        w.block_id(&v.value);
        w.u8(match v.validity {
            Validity::Valid => 1,
            Validity::Invalid => 0,
        });
    },
    |r| {
        let height = r.height()?;
        let round = r.round()?;
        let valid_round = r.round()?;
        let proposer = r.address()?;
        let value = r.block_id()?;
        let validity = match r.u8()? {
            1 => Validity::Valid,
            0 => Validity::Invalid,
            t => return err(format!("bad validity {t}")),
        };
        Ok(ProposedValue {
            height,
            round,
            valid_round,
            proposer,
            value,
            validity,
        })
    }
);

codec!(PolkaCertificate<BansosContext>, write_polka, read_polka);

/// Decodes `bytes` as every message type of this codec; each type that accepts them must
/// encode the message back to exactly `bytes` (one message, one encoding). Returns how many
/// types accepted them. Used by the fuzz target `fuzz/fuzz_targets/consensus_codec.rs` and
/// the tests below; panics on a non-canonical encoding, which is a bug in this file.
pub fn check_canonical(bytes: &[u8]) -> usize {
    fn one<T>(bytes: &Bytes) -> usize
    where
        BansosCodec: Codec<T, Error = CodecError>,
    {
        let Ok(message) = Codec::<T>::decode(&BansosCodec, bytes.clone()) else {
            return 0;
        };
        let again = Codec::<T>::encode(&BansosCodec, &message);
        assert!(
            matches!(&again, Ok(b) if b == bytes),
            "{} decoded from bytes it does not encode to",
            std::any::type_name::<T>()
        );
        1
    }
    let bytes = Bytes::copy_from_slice(bytes);
    one::<ProposalPart>(&bytes)
        + one::<SignedConsensusMsg<BansosContext>>(&bytes)
        + one::<LivenessMsg<BansosContext>>(&bytes)
        + one::<StreamMessage<ProposalPart>>(&bytes)
        + one::<ValidatorProof<BansosContext>>(&bytes)
        + one::<Status<BansosContext>>(&bytes)
        + one::<Request<BansosContext>>(&bytes)
        + one::<Response<BansosContext>>(&bytes)
        + one::<ProposedValue<BansosContext>>(&bytes)
        + one::<PolkaCertificate<BansosContext>>(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arc_malachitebft_app_channel::app::types::core::Context as _;

    fn address(seed: u8) -> ValidatorAddress {
        ValidatorAddress(PublicKey(
            ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
                .verifying_key()
                .to_bytes(),
        ))
    }

    fn round_trip<T>(message: T)
    where
        BansosCodec: Codec<T, Error = CodecError>,
        T: PartialEq + std::fmt::Debug,
    {
        let bytes = BansosCodec.encode(&message).unwrap();
        assert_eq!(BansosCodec.decode(bytes.clone()).unwrap(), message);
        assert!(check_canonical(&bytes) >= 1);
        // Every single-bit flip: refused, or accepted as a message with exactly those bytes.
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.to_vec();
            flipped[bit / 8] ^= 1 << (bit % 8);
            check_canonical(&flipped);
        }
        // Truncation and trailing garbage are refused, never a panic.
        for cut in 0..bytes.len() {
            assert!(
                Codec::<T>::decode(&BansosCodec, bytes.slice(..cut)).is_err(),
                "decoded a message cut at {cut}"
            );
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(Codec::<T>::decode(&BansosCodec, Bytes::from(longer)).is_err());
    }

    #[test]
    fn every_message_round_trips_and_refuses_truncation() {
        let context = BansosContext::for_test("bansos-test");
        let block = BlockId(Hash32::digest(b"block"));
        let vote = context.new_precommit(
            BlockHeight(3),
            Round::new(1),
            NilOrVal::Val(block),
            address(1),
        );
        let signed_vote = SignedMessage::new(vote, ConsensusSignature([7; 64]));
        let proposal =
            context.new_proposal(BlockHeight(3), Round::new(1), block, Round::Nil, address(2));
        round_trip(SignedConsensusMsg::Vote(signed_vote.clone()));
        round_trip(SignedConsensusMsg::Proposal(SignedMessage::new(
            proposal,
            ConsensusSignature([8; 64]),
        )));
        round_trip(ProposalPart::Init {
            height: BlockHeight(3),
            round: Round::new(0),
            pol_round: Round::Nil,
            proposer: address(2),
        });
        round_trip(ProposalPart::Chunk(vec![1, 2, 3]));
        round_trip(StreamMessage::new(
            StreamId::new(Bytes::from_static(b"h3r0")),
            4,
            StreamContent::Data(ProposalPart::Fin {
                signature: ConsensusSignature([9; 64]),
            }),
        ));
        round_trip(StreamMessage::<ProposalPart>::new(
            StreamId::new(Bytes::from_static(b"h3r0")),
            5,
            StreamContent::Fin,
        ));
        round_trip(LivenessMsg::Vote(signed_vote));
        round_trip(PolkaCertificate {
            height: BlockHeight(3),
            round: Round::new(1),
            value_id: block,
            polka_signatures: vec![PolkaSignature::new(address(1), ConsensusSignature([1; 64]))],
        });
        round_trip(ProposedValue {
            height: BlockHeight(3),
            round: Round::new(1),
            valid_round: Round::Nil,
            proposer: address(2),
            value: block,
            validity: Validity::Valid,
        });
        round_trip(ValidatorProof::<BansosContext>::new(
            vec![1; 32],
            vec![2; 38],
            ConsensusSignature([3; 64]),
        ));
        round_trip(Request::<BansosContext>::ValueRequest(ValueRequest::new(
            BlockHeight(2)..=BlockHeight(6),
        )));
        let certificate = ExtendedCommitCertificate {
            height: BlockHeight(3),
            round: Round::new(0),
            value_id: block,
            commit_signatures: vec![ExtendedCommitSignature {
                address: address(1),
                signature: ConsensusSignature([4; 64]),
                extension: None,
            }],
        };
        round_trip(Response::<BansosContext>::ValueResponse(ValueResponse {
            start_height: BlockHeight(3),
            values: vec![RawDecidedValue::new(
                Bytes::from_static(b"block bytes"),
                certificate,
            )],
        }));
    }

    #[test]
    fn hostile_lengths_and_rounds_are_refused() {
        let mut w = Writer::new();
        w.u8(1); // a chunk…
        w.u64(u64::MAX); // …claiming an absurd length
        assert!(Codec::<ProposalPart>::decode(&BansosCodec, w.finish()).is_err());
        let mut w = Writer::new();
        w.u8(0);
        w.u64(3);
        w.u64(i64::MAX as u64); // a round beyond u32, which Malachite would assert on
        assert!(Codec::<ProposalPart>::decode(&BansosCodec, w.finish()).is_err());
        assert!(Codec::<ProposalPart>::decode(&BansosCodec, Bytes::from_static(&[9, 0])).is_err());
    }
}
