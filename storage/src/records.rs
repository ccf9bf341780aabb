//! How values are laid out in sled: the public query types and the compact forms the hot queries read.
//!
//! - Full reports are serde_json, deflate-compressed behind a one-byte codec tag (a full report with its 96-bin
//!   ESD is about 2.5 KB of JSON; compressed it is well under 1 KB, and only single-report reads pay for inflating).
//! - Trajectory points are a JSON array (no field names) with floats rounded to f32: they are drawn, not
//!   recomputed, and this keeps one point near 100 bytes so a 2000-step trajectory reads in a few milliseconds.
//!   Exact values are in the full report.
//! - A checkpoint's phase row is one byte per layer index (the phase grid reads 200 of them, not 100 000 points).
//! - Raw eigenvalues are little-endian f64 bytes: JSON would double their size and lose nothing in exchange.

use crate::error::{Error, Result};
use htsr_contracts::{LayerReport, LayerStatus, Phase, Warning};

pub use htsr_api::TrajectoryPoint;

/// The stored form of a point: the step is in the key, floats are f32, enums are small integers.
type PointTuple = (
    u8,          // status
    u8,          // phase code
    bool,        // very_heavy_tailed
    Option<f32>, // alpha
    Option<f32>, // D
    Option<f32>, // sigma
    Option<usize>,
    Option<usize>,
    Option<f32>, // mp_softrank
    Option<f32>, // lambda_max
    Option<f32>, // stable_rank
    Option<f32>, // log_spectral_norm
    Option<f32>, // alpha_weighted
    u8,          // warning
);

fn f32_of(v: Option<f64>) -> Option<f32> {
    v.map(|x| x as f32).filter(|x| x.is_finite())
}

/// Phase code in a phase row or point: the index in [`Phase::ALL`].
pub const NO_PHASE: u8 = 0xFE;
/// Phase row byte for a layer index that has no report at this checkpoint.
pub const ABSENT: u8 = 0xFF;

/// The byte that stores an optional phase: its index in [`Phase::ALL`], or [`NO_PHASE`].
pub fn phase_code(p: Option<Phase>) -> u8 {
    p.map_or(NO_PHASE, |p| p.index() as u8)
}

/// The phase of a stored byte; None for [`NO_PHASE`], [`ABSENT`] or any unknown code.
pub fn phase_of_code(c: u8) -> Option<Phase> {
    Phase::ALL.get(c as usize).copied()
}

fn status_code(s: LayerStatus) -> u8 {
    match s {
        LayerStatus::Success => 0,
        LayerStatus::Failed => 1,
        LayerStatus::Skipped => 2,
        LayerStatus::Missing => 3,
    }
}

fn status_of_code(c: u8) -> LayerStatus {
    match c {
        0 => LayerStatus::Success,
        1 => LayerStatus::Failed,
        3 => LayerStatus::Missing,
        _ => LayerStatus::Skipped,
    }
}

fn warning_code(w: Warning) -> u8 {
    match w {
        Warning::None => 0,
        Warning::OverTrained => 1,
        Warning::UnderTrained => 2,
    }
}

fn warning_of_code(c: u8) -> Warning {
    match c {
        1 => Warning::OverTrained,
        2 => Warning::UnderTrained,
        _ => Warning::None,
    }
}

/// A trajectory point in its stored form: a JSON array with floats rounded to f32 (the step is in the key).
pub fn encode_point(p: &TrajectoryPoint) -> Result<Vec<u8>> {
    let t: PointTuple = (
        status_code(p.status),
        phase_code(p.phase),
        p.very_heavy_tailed,
        f32_of(p.alpha),
        f32_of(p.d),
        f32_of(p.sigma),
        p.num_pl_spikes,
        p.num_spikes,
        f32_of(p.mp_softrank),
        f32_of(p.lambda_max),
        f32_of(p.stable_rank),
        f32_of(p.log_spectral_norm),
        f32_of(p.alpha_weighted),
        warning_code(p.warning),
    );
    Ok(serde_json::to_vec(&t)?)
}

/// The trajectory point stored as `bytes` at `step`; an error when the bytes do not decode.
pub fn decode_point(step: u64, bytes: &[u8]) -> Result<TrajectoryPoint> {
    let t: PointTuple = serde_json::from_slice(bytes)?;
    let f = |v: Option<f32>| v.map(f64::from);
    Ok(TrajectoryPoint {
        step,
        status: status_of_code(t.0),
        phase: phase_of_code(t.1),
        very_heavy_tailed: t.2,
        alpha: f(t.3),
        d: f(t.4),
        sigma: f(t.5),
        num_pl_spikes: t.6,
        num_spikes: t.7,
        mp_softrank: f(t.8),
        lambda_max: f(t.9),
        stable_rank: f(t.10),
        log_spectral_norm: f(t.11),
        alpha_weighted: f(t.12),
        warning: warning_of_code(t.13),
    })
}

const CODEC_JSON: u8 = 0;
const CODEC_DEFLATE_JSON: u8 = 1;
/// Deflate of JSON whose object keys were replaced by `~<index in REPORT_KEYS>`.
const CODEC_DEFLATE_SHORT_KEYS: u8 = 2;

/// Every field name a serialized [`LayerReport`] contains, in a FIXED order: a stored key `~i` means
/// `REPORT_KEYS[i]`. Field names are about half of a compressed report (deflate cannot shorten names that occur
/// once), and shortening them is what brings a full report with its ESD under 1 KB. Append new names at the end,
/// never reorder: stores already written depend on the indices. Names missing here are stored as they are, so a
/// field added to the model still round-trips (a test lists the names that should be appended).
pub const REPORT_KEYS: &[&str] = &[
    "name",
    "tensor",
    "shape",
    "dtype",
    "layer_type",
    "status",
    "reason",
    "metrics",
    "power_law",
    "mp",
    "randomization",
    "phase",
    "warning",
    "esd",
    "reused_from_step",
    "seconds",
    "N",
    "M",
    "Q",
    "rf",
    "num_evals",
    "lambda_max",
    "sv_max",
    "sv_min",
    "norm",
    "log_norm",
    "spectral_norm",
    "log_spectral_norm",
    "alpha_weighted",
    "log_alpha_norm",
    "stable_rank",
    "matrix_rank",
    "rank_loss",
    "weak_rank_loss",
    "entropy",
    "alpha",
    "xmin",
    "xmax",
    "D",
    "sigma",
    "num_pl_spikes",
    "sigma_mp",
    "bulk_min",
    "bulk_max",
    "num_spikes",
    "mp_softrank",
    "W_scale",
    "seed",
    "max_rand_eval",
    "rand_distance",
    "ww_softrank",
    "ww_maxdist",
    "rand_num_spikes",
    "rand_sigma_mp",
    "rand_bulk_max",
    "rand_bulk_min",
    "rand_mp_softrank",
    "rand_W_scale",
    "very_heavy_tailed",
    "evidence",
    "n_tail",
    "spikes",
    "frac_outside",
    "edge_mass",
    "normalized_stable_rank",
    "zero_fraction",
    "log10_lo",
    "log10_hi",
    "counts",
    "zeros",
    "erg",
    "detX_num",
    "detX_val",
    "detX_val_unrescaled",
    "ERG_gap",
    "detx_val",
    "layer_id",
];

fn shorten_keys(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let k = match REPORT_KEYS.iter().position(|n| *n == k) {
                        Some(i) => format!("~{i:x}"),
                        None => k,
                    };
                    (k, shorten_keys(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(shorten_keys).collect()),
        other => other,
    }
}

fn expand_keys(v: serde_json::Value) -> Result<serde_json::Value> {
    use serde_json::Value;
    Ok(match v {
        Value::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, v) in map {
                let k = match k.strip_prefix('~') {
                    Some(code) => usize::from_str_radix(code, 16)
                        .ok()
                        .and_then(|i| REPORT_KEYS.get(i))
                        .ok_or_else(|| Error::Corrupt {
                            tree: "reports",
                            detail: format!("unknown key code {k}"),
                        })?
                        .to_string(),
                    None => k,
                };
                out.insert(k, expand_keys(v)?);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(expand_keys).collect::<Result<_>>()?),
        other => other,
    })
}

/// Deflate level: 6 is within a few percent of the best ratio on these records at a fraction of level 9's cost.
const DEFLATE_LEVEL: u8 = 6;

/// A full report in its stored form: a codec byte, then deflated JSON with field names shortened.
pub fn encode_report(r: &LayerReport) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(&shorten_keys(serde_json::to_value(r)?))?;
    let mut out = vec![CODEC_DEFLATE_SHORT_KEYS];
    out.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(&json, DEFLATE_LEVEL));
    Ok(out)
}

fn inflate(rest: &[u8]) -> Result<Vec<u8>> {
    miniz_oxide::inflate::decompress_to_vec(rest).map_err(|e| Error::Corrupt {
        tree: "reports",
        detail: format!("inflate: {e:?}"),
    })
}

/// A full report from any stored codec (plain JSON, deflated JSON, deflated JSON with short keys); a
/// [`Error::Corrupt`] for an unknown codec or bad deflate data.
pub fn decode_report(bytes: &[u8]) -> Result<LayerReport> {
    match bytes.split_first() {
        Some((&CODEC_JSON, rest)) => Ok(serde_json::from_slice(rest)?),
        Some((&CODEC_DEFLATE_JSON, rest)) => Ok(serde_json::from_slice(&inflate(rest)?)?),
        Some((&CODEC_DEFLATE_SHORT_KEYS, rest)) => {
            let v: serde_json::Value = serde_json::from_slice(&inflate(rest)?)?;
            Ok(serde_json::from_value(expand_keys(v)?)?)
        }
        _ => Err(Error::Corrupt {
            tree: "reports",
            detail: "unknown codec tag".into(),
        }),
    }
}

/// Raw eigenvalues as little-endian f64 bytes.
pub fn encode_raw(evals: &[f64]) -> Vec<u8> {
    evals.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Raw eigenvalues from little-endian f64 bytes; [`Error::Corrupt`] when the length is not a multiple of 8.
pub fn decode_raw(bytes: &[u8]) -> Result<Vec<f64>> {
    if !bytes.len().is_multiple_of(8) {
        return Err(Error::Corrupt {
            tree: "raw_eigenvalues",
            detail: "length is not a multiple of 8".into(),
        });
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn a_full_report_round_trips_and_compresses_below_1kb() {
        let r = fixtures::layer_report("model.layers.3.mlp.up_proj", 7);
        let json = serde_json::to_vec(&r).unwrap();
        let enc = encode_report(&r).unwrap();
        eprintln!(
            "report json {} bytes, stored {} bytes",
            json.len(),
            enc.len()
        );
        assert!(enc.len() < 1024, "stored report is {} bytes", enc.len());
        assert_eq!(decode_report(&enc).unwrap(), r);
    }

    #[test]
    fn every_report_field_name_has_a_short_code() {
        let mut r = fixtures::layer_report("l", 5);
        r.reason = Some("x".into());
        r.reused_from_step = Some(1);
        r.randomization = Some(htsr_contracts::Randomization {
            seed: 1,
            max_rand_eval: 1.0,
            rand_distance: 0.1,
            ww_softrank: 0.2,
            ww_maxdist: 0.3,
            rand_num_spikes: 2,
            rand_sigma_mp: 1.0,
            rand_bulk_max: 2.0,
            rand_bulk_min: 0.1,
            rand_mp_softrank: 0.5,
            rand_w_scale: 0.01,
        });
        fn walk(v: &serde_json::Value, missing: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    for (k, v) in m {
                        if !REPORT_KEYS.contains(&k.as_str()) {
                            missing.push(k.clone());
                        }
                        walk(v, missing);
                    }
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, missing)),
                _ => {}
            }
        }
        let mut missing = Vec::new();
        walk(&serde_json::to_value(&r).unwrap(), &mut missing);
        assert!(
            missing.is_empty(),
            "append these to REPORT_KEYS: {missing:?}"
        );
        assert_eq!(decode_report(&encode_report(&r).unwrap()).unwrap(), r);
        // A report stored by the older codec still reads.
        let mut old = vec![CODEC_DEFLATE_JSON];
        old.extend(miniz_oxide::deflate::compress_to_vec(
            &serde_json::to_vec(&r).unwrap(),
            6,
        ));
        assert_eq!(decode_report(&old).unwrap(), r);
    }

    #[test]
    fn reports_with_nan_round_trip() {
        let mut r = fixtures::layer_report("l", 1);
        r.metrics.as_mut().unwrap().alpha_weighted = f64::NAN;
        r.power_law.as_mut().unwrap().xmax = f64::INFINITY;
        let back = decode_report(&encode_report(&r).unwrap()).unwrap();
        assert!(back.metrics.unwrap().alpha_weighted.is_nan());
        assert_eq!(back.power_law.unwrap().xmax, f64::INFINITY);
    }

    #[test]
    fn points_round_trip_at_f32_precision() {
        let r = fixtures::layer_report("l", 3);
        let p = TrajectoryPoint::from_report(42, &r);
        let enc = encode_point(&p).unwrap();
        eprintln!("point {} bytes", enc.len());
        assert!(enc.len() < 200);
        let back = decode_point(42, &enc).unwrap();
        assert_eq!(back.step, 42);
        assert_eq!(back.phase, r.phase());
        assert_eq!(back.num_spikes, p.num_spikes);
        let (a, b) = (back.alpha.unwrap(), p.alpha.unwrap());
        assert!((a - b).abs() <= b.abs() * 1e-6);
        let skipped = TrajectoryPoint::from_report(1, &fixtures::skipped_report("b"));
        let back = decode_point(1, &encode_point(&skipped).unwrap()).unwrap();
        assert_eq!(back, skipped);
    }

    #[test]
    fn raw_eigenvalues_round_trip_exactly() {
        let v = vec![0.0, 1.5, f64::MIN_POSITIVE, 1e300];
        assert_eq!(decode_raw(&encode_raw(&v)).unwrap(), v);
        assert!(decode_raw(&[1, 2, 3]).is_err());
    }
}
