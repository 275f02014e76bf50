//! Rows of a Parquet file (e.g. a dataset downloaded from a dataset hub) as import rows: each
//! record becomes a JSON object with the file's column names, so that Parquet goes through the
//! same row readers as JSON and JSONL.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

use perfarena_core::import::{RawRow, RowLoc};

/// Whether a path names a Parquet file (by its extension).
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// Reads every record of a Parquet file as a row; rows are numbered from 1 in file order.
pub fn read_parquet_rows(path: &Path) -> Result<Vec<RawRow>> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {name}"))?;
    let reader = SerializedFileReader::new(file)
        .with_context(|| format!("{name}: not a readable Parquet file (perfarena reads uncompressed and snappy-compressed Parquet)"))?;
    let mut rows = Vec::new();
    for (idx, record) in reader
        .get_row_iter(None)
        .with_context(|| format!("{name}: cannot read its rows"))?
        .enumerate()
    {
        let record =
            record.with_context(|| format!("{name}: row {}: cannot decode it", idx + 1))?;
        let Value::Object(fields) = record.to_json_value() else {
            bail!(
                "{name}: row {}: expected a record of named columns",
                idx + 1
            );
        };
        rows.push(RawRow {
            loc: RowLoc {
                file: name.clone(),
                line: None,
                row: idx + 1,
                column: None,
            },
            fields,
        });
    }
    Ok(rows)
}
