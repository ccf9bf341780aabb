//! Exports of a store with WeightWatcher's column names ([`htsr_contracts::row::ExportRow`]): one row per (run,
//! step, layer), as CSV or JSON lines.

use std::io::Write;

use htsr_contracts::row::{ExportRow, COLUMNS};
use htsr_contracts::CheckpointRecord;

use crate::error::Result;
use crate::keys;
use crate::store::Store;

/// Calls `f` for every (checkpoint, layer) of `run` (or of every run), ordered by run, step, layer index.
///
/// The checkpoints are listed first, in one pass, and only then read: an export taken while the daemon stores more
/// holds exactly the checkpoints that existed when it began (a stored checkpoint's rows never change), so it equals
/// the same export taken after the daemon stops, minus the checkpoints stored meanwhile.
pub fn for_each_row(
    store: &Store,
    run: Option<&str>,
    mut f: impl FnMut(ExportRow) -> Result<()>,
) -> Result<()> {
    let db = store.open_db()?;
    let iter = match run {
        Some(r) => db.t.checkpoints.scan_prefix(keys::run_prefix(r)),
        None => db.t.checkpoints.iter(),
    };
    let listed: Vec<CheckpointRecord> = iter
        .values()
        .map(|v| Ok(serde_json::from_slice(&v?)?))
        .collect::<Result<_>>()?;
    drop(db);
    for cp in &listed {
        for layer in store.layers_at(&cp.run, cp.step)? {
            f(ExportRow::stored(cp, &layer))?;
        }
    }
    Ok(())
}

/// Writes CSV with a header row (always, even with no data, so pandas sees the columns). Returns the rows written.
pub fn write_csv<W: Write>(store: &Store, run: Option<&str>, out: W) -> Result<u64> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    w.write_record(COLUMNS)?;
    let mut n = 0;
    for_each_row(store, run, |row| {
        w.serialize(row)?;
        n += 1;
        Ok(())
    })?;
    w.flush()?;
    Ok(n)
}

/// Writes one JSON object per line, same keys as the CSV columns. Returns the rows written.
pub fn write_jsonl<W: Write>(store: &Store, run: Option<&str>, mut out: W) -> Result<u64> {
    let mut n = 0;
    for_each_row(store, run, |row| {
        serde_json::to_writer(&mut out, &row)?;
        out.write_all(b"\n")?;
        n += 1;
        Ok(())
    })?;
    out.flush()?;
    Ok(n)
}
