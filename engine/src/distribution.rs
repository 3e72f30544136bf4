//! Bucketing: rows of a partition are spread over N tablets by a hash of the distribution
//! columns (`DISTRIBUTED BY HASH(c1, ...) BUCKETS n`).
//!
//! The hash is fixed (it is part of where rows live): integers and temporal values are mixed
//! with SplitMix64, strings hashed with CRC-32C, and columns combined in order. NULL hashes as 0.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimeUnit, TimestampMicrosecondType,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::TableSchema;

/// The most buckets a partition may have.
pub const BUCKETS_MAX: u32 = 1024;

/// How a partition's rows are spread over its tablets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distribution {
    /// Hash columns; empty means "spread by row position" (StarRocks' RANDOM distribution).
    pub columns: Vec<String>,
    /// Tablets per partition.
    pub buckets: u32,
}

impl Distribution {
    /// HASH distribution on `columns` into `buckets` tablets.
    pub fn hash(columns: Vec<String>, buckets: u32) -> Distribution {
        Distribution { columns, buckets }
    }

    /// Checks the columns exist and the bucket count is sane.
    pub fn validate(&self, schema: &TableSchema) -> Result<()> {
        if self.buckets == 0 || self.buckets > BUCKETS_MAX {
            return Err(Error::InvalidDefinition(format!(
                "BUCKETS must be between 1 and {BUCKETS_MAX}, not {}",
                self.buckets
            )));
        }
        for c in &self.columns {
            let column = schema.column(c).ok_or_else(|| {
                Error::InvalidDefinition(format!("Unknown distribution column '{c}'"))
            })?;
            if matches!(
                column.column_type,
                crate::types::ColumnType::Float | crate::types::ColumnType::Double
            ) {
                return Err(Error::InvalidDefinition(format!(
                    "distribution column '{c}' must not be FLOAT or DOUBLE"
                )));
            }
        }
        Ok(())
    }
}

fn mix(mut z: u64) -> u64 {
    // SplitMix64 finaliser.
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Folds one column into the running row hashes.
fn hash_column(array: &dyn Array, hashes: &mut [u64]) {
    macro_rules! prim {
        ($t:ty, $conv:expr) => {{
            let a = array.as_primitive::<$t>();
            for (row, h) in hashes.iter_mut().enumerate() {
                let v = if a.is_null(row) {
                    0
                } else {
                    $conv(a.value(row))
                };
                *h = mix(*h ^ v);
            }
        }};
    }
    match array.data_type() {
        DataType::Int8 => prim!(Int8Type, |v: i8| v as u64),
        DataType::Int16 => prim!(Int16Type, |v: i16| v as u64),
        DataType::Int32 => prim!(Int32Type, |v: i32| v as u64),
        DataType::Int64 => prim!(Int64Type, |v: i64| v as u64),
        DataType::Date32 => prim!(Date32Type, |v: i32| v as u64),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            prim!(TimestampMicrosecondType, |v: i64| v as u64)
        }
        DataType::Decimal128(_, _) => {
            prim!(Decimal128Type, |v: i128| (v as u64) ^ ((v >> 64) as u64))
        }
        DataType::Float32 => prim!(Float32Type, |v: f32| u64::from(v.to_bits())),
        DataType::Float64 => prim!(Float64Type, |v: f64| v.to_bits()),
        DataType::Boolean => {
            let a = array.as_boolean();
            for (row, h) in hashes.iter_mut().enumerate() {
                let v = if a.is_null(row) {
                    0
                } else {
                    1 + u64::from(a.value(row))
                };
                *h = mix(*h ^ v);
            }
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            for (row, h) in hashes.iter_mut().enumerate() {
                let v = if a.is_null(row) {
                    0
                } else {
                    u64::from(crc32c::crc32c(a.value(row).as_bytes()))
                };
                *h = mix(*h ^ v);
            }
        }
        _ => {}
    }
}

/// The bucket of every row of `columns` (the distribution columns of a batch).
pub(crate) fn buckets_of(
    columns: &[&dyn Array],
    rows: usize,
    buckets: u32,
    offset: u64,
) -> Vec<u32> {
    if buckets <= 1 {
        return vec![0; rows];
    }
    if columns.is_empty() {
        // RANDOM distribution: round-robin from a per-load offset.
        return (0..rows as u64)
            .map(|r| ((r + offset) % u64::from(buckets)) as u32)
            .collect();
    }
    let mut hashes = vec![0u64; rows];
    for c in columns {
        hash_column(*c, &mut hashes);
    }
    hashes
        .into_iter()
        .map(|h| (h % u64::from(buckets)) as u32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    #[test]
    fn buckets_are_deterministic_and_spread() {
        let ids = Int64Array::from_iter_values(0..10_000);
        let b1 = buckets_of(&[&ids], 10_000, 8, 0);
        let b2 = buckets_of(&[&ids], 10_000, 8, 0);
        assert_eq!(b1, b2);
        let mut counts = [0u32; 8];
        for b in b1 {
            counts[b as usize] += 1;
        }
        assert!(counts.iter().all(|c| *c > 1_000), "{counts:?}");
        let s = StringArray::from(vec!["a", "b", "a"]);
        let b = buckets_of(&[&s], 3, 16, 0);
        assert_eq!(b[0], b[2]);
    }
}
