//! Ed25519 signature verification for Tally, under the ZIP 215 rules.
//!
//! Why this exists: verifying signatures is the largest single cost of a Tally
//! validator, and a peer receives transactions in bundles of up to 250, which is
//! where batch verification pays (about half the cost of verifying one by one).
//! Batch and single verification must give the same answer for every input, or two
//! validators could disagree about a block; ZIP 215 is the rule set under which they
//! do (cofactored equation, canonical `s`, any decodable point for `A` and `R`), and it
//! is the rule CometBFT itself applies to validator signatures. ed25519-zebra is the
//! reference implementation of those rules.
//!
//! Determinism: a batch's random coefficients come from a ChaCha20 stream seeded with
//! the SHA-512 of every item in the batch (no operating-system randomness), so a signer
//! cannot choose or predict them without breaking SHA-512. Verdicts do not depend on
//! them: valid signatures always pass together; a batch holding an invalid one fails
//! except with probability 2^-128, and a failed batch is verified item by item, so every
//! call answers per signature, exactly as single verification does.

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_zebra::{batch, Signature, VerificationKey, VerificationKeyBytes};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha512};

/// Below this many signatures a batch costs more than verifying one by one.
const MIN_BATCH: usize = 4;

struct Item<'a> {
    key: &'a [u8],
    message: &'a [u8],
    signature: &'a [u8],
}

fn parse(key: &[u8], signature: &[u8]) -> Option<(VerificationKeyBytes, Signature)> {
    let key = VerificationKeyBytes::try_from(key).ok()?;
    if is_small_order(key.as_ref()) {
        return None;
    }
    let signature = Signature::from_slice(signature).ok()?;
    Some((key, signature))
}

fn verify_one(item: &Item) -> bool {
    let Some((key, signature)) = parse(item.key, item.signature) else {
        return false;
    };
    match VerificationKey::try_from(key) {
        Ok(key) => key.verify(&signature, item.message).is_ok(),
        Err(_) => false,
    }
}

/// A public key of small order verifies a forged signature of any message under ZIP 215
/// (with `R` the identity and `s = 0` the equation holds whoever "signs"). No key pair
/// made from a seed has one, and such a key proves nothing about who signed, so Tally
/// refuses it, in single and batch verification alike (as libsodium does).
///
/// The eight small-order points have y in {0, 1, -1, two order-8 values}; with the sign
/// bit either way and the two non-canonical encodings y + p (only y < 19 has one), that
/// is these seven values of y, each with either sign: 14 encodings. Comparing bytes costs
/// nanoseconds, where decompressing the point costs a square root (about 7 µs);
/// `is_small_order_point` decompresses, and the tests check the two agree.
const SMALL_ORDER_Y: [[u8; 32]; 7] = [
    // y = 0 (order 4)
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
    // y = 1 (the identity)
    [0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
    // y = order 8
    [0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05],
    // y = order 8
    [0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a],
    // y = p - 1 (order 2)
    [0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
    // y = p, a second encoding of 0
    [0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
    // y = p + 1, a second encoding of 1
    [0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
];

fn is_small_order(key: &[u8]) -> bool {
    let Ok(mut bytes) = <[u8; 32]>::try_from(key) else {
        return false;
    };
    bytes[31] &= 0x7f;
    SMALL_ORDER_Y.contains(&bytes)
}

fn is_small_order_point(key: &[u8]) -> bool {
    let Ok(bytes) = <[u8; 32]>::try_from(key) else {
        return false;
    };
    CompressedEdwardsY(bytes)
        .decompress()
        .is_some_and(|point| point.is_small_order())
}

/// True when every item is valid; false when one is not, or cannot even be parsed.
fn verify_together(items: &[Item]) -> bool {
    let mut seed = Sha512::new();
    let mut verifier = batch::Verifier::new();
    for item in items {
        let Some((key, signature)) = parse(item.key, item.signature) else {
            return false;
        };
        for part in [item.key, item.signature, item.message] {
            seed.update((part.len() as u64).to_le_bytes());
            seed.update(part);
        }
        verifier.queue((key, signature, item.message));
    }
    let digest = seed.finalize();
    let mut chacha_seed = [0u8; 32];
    chacha_seed.copy_from_slice(&digest[..32]);
    verifier.verify(ChaCha20Rng::from_seed(chacha_seed)).is_ok()
}

fn verify_all(items: &[Item]) -> Vec<bool> {
    if items.len() >= MIN_BATCH && verify_together(items) {
        return vec![true; items.len()];
    }
    items.iter().map(verify_one).collect()
}

/// True when `signature` is a valid ZIP 215 signature of `message` by `public_key`.
/// Malformed keys and signatures are invalid, never an exception.
#[pyfunction]
fn verify(py: Python<'_>, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let item = Item { key: public_key, message, signature };
    if message.len() < 4096 {
        return verify_one(&item);
    }
    py.detach(|| verify_one(&item))
}

/// One verdict per `(public_key, message, signature)` triple, in order; the same
/// verdicts as calling `verify` on each, at about half the cost for large batches.
/// Releases the GIL while it works.
#[pyfunction]
fn verify_batch(py: Python<'_>, items: Vec<(Bound<'_, PyBytes>, Bound<'_, PyBytes>, Bound<'_, PyBytes>)>) -> Vec<bool> {
    let borrowed: Vec<Item> = items
        .iter()
        .map(|(key, message, signature)| Item {
            key: key.as_bytes(),
            message: message.as_bytes(),
            signature: signature.as_bytes(),
        })
        .collect();
    py.detach(|| verify_all(&borrowed))
}

/// True when `public_key` is one of the 14 encodings Tally refuses as small-order keys.
#[pyfunction]
#[pyo3(name = "is_small_order")]
fn py_is_small_order(public_key: &[u8]) -> bool {
    is_small_order(public_key)
}

/// The same question answered by decompressing the point: slow and exact, for tests.
#[pyfunction]
#[pyo3(name = "is_small_order_point")]
fn py_is_small_order_point(public_key: &[u8]) -> bool {
    is_small_order_point(public_key)
}

#[pymodule]
fn tally_ed25519(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(verify, module)?)?;
    module.add_function(wrap_pyfunction!(verify_batch, module)?)?;
    module.add_function(wrap_pyfunction!(py_is_small_order, module)?)?;
    module.add_function(wrap_pyfunction!(py_is_small_order_point, module)?)?;
    Ok(())
}
