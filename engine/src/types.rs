//! StarRocks column types, their Arrow mapping, and scalar values.
//!
//! A [`Value`] is one scalar of a column: partition bounds, list values, min/max statistics and
//! predicate operands. On disk values are written as SQL literal text (`2025-01-31`, `42`,
//! `abc`), so the manifest and the repository metadata stay readable and independent of the Rust
//! representation.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The largest precision of a DECIMAL (Arrow's Decimal128 holds 38 digits).
pub const DECIMAL_PRECISION_MAX: u8 = 38;
/// The longest CHAR, in bytes (StarRocks' limit).
pub const CHAR_LENGTH_MAX: u32 = 255;
/// The longest VARCHAR, in bytes (StarRocks' limit).
pub const VARCHAR_LENGTH_MAX: u32 = 1_048_576;

/// A StarRocks column type.
///
/// | StarRocks       | Arrow                         |
/// |-----------------|-------------------------------|
/// | BOOLEAN         | Boolean                       |
/// | TINYINT         | Int8                          |
/// | SMALLINT        | Int16                         |
/// | INT             | Int32                         |
/// | BIGINT          | Int64                         |
/// | LARGEINT        | Decimal128(38, 0)             |
/// | FLOAT           | Float32                       |
/// | DOUBLE          | Float64                       |
/// | DECIMAL(p, s)   | Decimal128(p, s)              |
/// | CHAR(n)         | Utf8                          |
/// | VARCHAR(n)      | Utf8                          |
/// | STRING          | Utf8                          |
/// | DATE            | Date32                        |
/// | DATETIME        | Timestamp(Microsecond, None)  |
///
/// On disk a type is its SQL spelling (`VARCHAR(20)`, `DECIMAL(10,2)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ColumnType {
    /// BOOLEAN.
    Boolean,
    /// TINYINT, 8-bit signed.
    TinyInt,
    /// SMALLINT, 16-bit signed.
    SmallInt,
    /// INT, 32-bit signed.
    Int,
    /// BIGINT, 64-bit signed.
    BigInt,
    /// LARGEINT, 128-bit signed (stored as DECIMAL(38,0), so limited to 38 digits).
    LargeInt,
    /// FLOAT, 32-bit IEEE.
    Float,
    /// DOUBLE, 64-bit IEEE.
    Double,
    /// DECIMAL(precision, scale).
    Decimal {
        /// Total digits, 1..=38.
        precision: u8,
        /// Digits after the point, 0..=precision.
        scale: u8,
    },
    /// CHAR(n): fixed length in bytes, stored as a string.
    Char(u32),
    /// VARCHAR(n): at most n bytes.
    Varchar(u32),
    /// STRING: VARCHAR(65533) in StarRocks; unbounded here.
    String,
    /// DATE: days since 1970-01-01.
    Date,
    /// DATETIME: microseconds since 1970-01-01 00:00:00, no time zone.
    Datetime,
}

impl ColumnType {
    /// The Arrow type values of this column have.
    pub fn arrow_type(&self) -> DataType {
        match self {
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::TinyInt => DataType::Int8,
            ColumnType::SmallInt => DataType::Int16,
            ColumnType::Int => DataType::Int32,
            ColumnType::BigInt => DataType::Int64,
            ColumnType::LargeInt => DataType::Decimal128(DECIMAL_PRECISION_MAX, 0),
            ColumnType::Float => DataType::Float32,
            ColumnType::Double => DataType::Float64,
            ColumnType::Decimal { precision, scale } => {
                DataType::Decimal128(*precision, *scale as i8)
            }
            ColumnType::Char(_) | ColumnType::Varchar(_) | ColumnType::String => DataType::Utf8,
            ColumnType::Date => DataType::Date32,
            ColumnType::Datetime => DataType::Timestamp(TimeUnit::Microsecond, None),
        }
    }

    /// The StarRocks type closest to an Arrow type, for loading files whose schema is Arrow's.
    pub fn from_arrow(data_type: &DataType) -> Option<ColumnType> {
        Some(match data_type {
            DataType::Boolean => ColumnType::Boolean,
            DataType::Int8 => ColumnType::TinyInt,
            DataType::Int16 | DataType::UInt8 => ColumnType::SmallInt,
            DataType::Int32 | DataType::UInt16 => ColumnType::Int,
            DataType::Int64 | DataType::UInt32 => ColumnType::BigInt,
            DataType::UInt64 => ColumnType::LargeInt,
            DataType::Float16 | DataType::Float32 => ColumnType::Float,
            DataType::Float64 => ColumnType::Double,
            DataType::Decimal128(p, s) if *s >= 0 && *p <= DECIMAL_PRECISION_MAX => {
                ColumnType::Decimal {
                    precision: *p,
                    scale: *s as u8,
                }
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColumnType::String,
            DataType::Date32 | DataType::Date64 => ColumnType::Date,
            DataType::Timestamp(_, _) => ColumnType::Datetime,
            _ => return None,
        })
    }

    /// True for the types whose values are integers once encoded (usable as RANGE keys).
    pub fn is_integral(&self) -> bool {
        matches!(
            self,
            ColumnType::TinyInt
                | ColumnType::SmallInt
                | ColumnType::Int
                | ColumnType::BigInt
                | ColumnType::LargeInt
                | ColumnType::Date
                | ColumnType::Datetime
        )
    }

    /// True for CHAR, VARCHAR and STRING.
    pub fn is_string(&self) -> bool {
        matches!(
            self,
            ColumnType::Char(_) | ColumnType::Varchar(_) | ColumnType::String
        )
    }

    /// Builds a type from its SQL name and parameters (`("VARCHAR", [20])`), checking limits.
    pub fn from_sql(name: &str, params: &[u32]) -> Result<ColumnType> {
        let bad = |reason: &str| Error::InvalidDefinition(format!("invalid type {name}: {reason}"));
        let upper = name.to_ascii_uppercase();
        let no_params = |t: ColumnType| {
            if params.is_empty() {
                Ok(t)
            } else {
                Err(bad("takes no length or precision"))
            }
        };
        match upper.as_str() {
            "BOOLEAN" | "BOOL" => no_params(ColumnType::Boolean),
            "TINYINT" => no_params(ColumnType::TinyInt),
            "SMALLINT" => no_params(ColumnType::SmallInt),
            "INT" | "INTEGER" => no_params(ColumnType::Int),
            "BIGINT" => no_params(ColumnType::BigInt),
            "LARGEINT" => no_params(ColumnType::LargeInt),
            "FLOAT" => no_params(ColumnType::Float),
            "DOUBLE" => no_params(ColumnType::Double),
            "STRING" | "TEXT" => no_params(ColumnType::String),
            "DATE" => no_params(ColumnType::Date),
            "DATETIME" => no_params(ColumnType::Datetime),
            "DECIMAL" | "DECIMALV2" | "DECIMALV3" | "DECIMAL32" | "DECIMAL64" | "DECIMAL128"
            | "NUMERIC" => {
                let (precision, scale) = match params {
                    [] => (10, 0),
                    [p] => (*p, 0),
                    [p, s] => (*p, *s),
                    _ => return Err(bad("takes (precision, scale)")),
                };
                if precision == 0 || precision > u32::from(DECIMAL_PRECISION_MAX) {
                    return Err(bad("precision must be between 1 and 38"));
                }
                if scale > precision {
                    return Err(bad("scale must not exceed precision"));
                }
                Ok(ColumnType::Decimal {
                    precision: precision as u8,
                    scale: scale as u8,
                })
            }
            "CHAR" => match params {
                [] => Ok(ColumnType::Char(1)),
                [n] if (1..=CHAR_LENGTH_MAX).contains(n) => Ok(ColumnType::Char(*n)),
                [_] => Err(bad("length must be between 1 and 255")),
                _ => Err(bad("takes one length")),
            },
            "VARCHAR" => match params {
                [] => Ok(ColumnType::Varchar(1)),
                [n] if (1..=VARCHAR_LENGTH_MAX).contains(n) => Ok(ColumnType::Varchar(*n)),
                [_] => Err(bad("length must be between 1 and 1048576")),
                _ => Err(bad("takes one length")),
            },
            _ => Err(Error::InvalidDefinition(format!("unknown type {name}"))),
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Boolean => f.write_str("BOOLEAN"),
            ColumnType::TinyInt => f.write_str("TINYINT"),
            ColumnType::SmallInt => f.write_str("SMALLINT"),
            ColumnType::Int => f.write_str("INT"),
            ColumnType::BigInt => f.write_str("BIGINT"),
            ColumnType::LargeInt => f.write_str("LARGEINT"),
            ColumnType::Float => f.write_str("FLOAT"),
            ColumnType::Double => f.write_str("DOUBLE"),
            ColumnType::Decimal { precision, scale } => write!(f, "DECIMAL({precision},{scale})"),
            ColumnType::Char(n) => write!(f, "CHAR({n})"),
            ColumnType::Varchar(n) => write!(f, "VARCHAR({n})"),
            ColumnType::String => f.write_str("STRING"),
            ColumnType::Date => f.write_str("DATE"),
            ColumnType::Datetime => f.write_str("DATETIME"),
        }
    }
}

impl FromStr for ColumnType {
    type Err = Error;

    /// Parses the SQL spelling written by `Display` (`DECIMAL(10,2)`, `VARCHAR(20)`, `INT`).
    fn from_str(text: &str) -> Result<ColumnType> {
        let text = text.trim();
        let (name, params) = match text.split_once('(') {
            None => (text, Vec::new()),
            Some((name, rest)) => {
                let inner = rest.strip_suffix(')').ok_or_else(|| {
                    Error::InvalidDefinition(format!("invalid type {text}: missing ')'"))
                })?;
                let params = inner
                    .split(',')
                    .map(|p| {
                        p.trim().parse::<u32>().map_err(|_| {
                            Error::InvalidDefinition(format!("invalid type {text}: bad parameter"))
                        })
                    })
                    .collect::<Result<Vec<u32>>>()?;
                (name.trim(), params)
            }
        };
        ColumnType::from_sql(name, &params)
    }
}

impl TryFrom<String> for ColumnType {
    type Error = Error;
    fn try_from(text: String) -> Result<ColumnType> {
        text.parse()
    }
}

impl From<ColumnType> for String {
    fn from(t: ColumnType) -> String {
        t.to_string()
    }
}

/// One column of a table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Column name, unique within its table (compared case-insensitively).
    pub name: String,
    /// StarRocks type.
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Part of the DUPLICATE KEY (sort key); key columns come first.
    #[serde(default)]
    pub is_key: bool,
}

impl Column {
    /// A nullable, non-key column.
    pub fn new(name: impl Into<String>, column_type: ColumnType) -> Column {
        Column {
            name: name.into(),
            column_type,
            nullable: true,
            is_key: false,
        }
    }

    /// The same column, NOT NULL.
    pub fn not_null(mut self) -> Column {
        self.nullable = false;
        self
    }

    /// The same column, as a key column.
    pub fn key(mut self) -> Column {
        self.is_key = true;
        self
    }
}

/// The columns of a table, in order, with their Arrow schema.
#[derive(Clone, Debug, PartialEq)]
pub struct TableSchema {
    columns: Vec<Column>,
    arrow: SchemaRef,
}

impl TableSchema {
    /// Checks the columns (non-empty, unique names, keys first) and builds the Arrow schema.
    pub fn new(columns: Vec<Column>) -> Result<TableSchema> {
        if columns.is_empty() {
            return Err(Error::InvalidDefinition(
                "a table needs at least one column".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let mut keys_done = false;
        for column in &columns {
            crate::names::validate("column", &column.name)?;
            if !seen.insert(column.name.to_ascii_lowercase()) {
                return Err(Error::InvalidDefinition(format!(
                    "Duplicate column name '{}'",
                    column.name
                )));
            }
            if column.is_key && keys_done {
                return Err(Error::InvalidDefinition(format!(
                    "Key columns should be a ordered prefix of the schema; '{}' is not",
                    column.name
                )));
            }
            keys_done |= !column.is_key;
        }
        let fields: Vec<Field> = columns
            .iter()
            .map(|c| Field::new(&c.name, c.column_type.arrow_type(), c.nullable))
            .collect();
        Ok(TableSchema {
            columns,
            arrow: Arc::new(Schema::new(fields)),
        })
    }

    /// The columns in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The Arrow schema of scans and loads.
    pub fn arrow_schema(&self) -> &SchemaRef {
        &self.arrow
    }

    /// The index of a column by name (case-insensitive, as StarRocks).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The column with that name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.index_of(name).map(|i| &self.columns[i])
    }
}

impl Serialize for TableSchema {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.columns.serialize(s)
    }
}

impl<'de> Deserialize<'de> for TableSchema {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let columns = Vec::<Column>::deserialize(d)?;
        TableSchema::new(columns).map_err(serde::de::Error::custom)
    }
}

/// One scalar value of a column, compared within the column's type.
///
/// Integers, DECIMAL (unscaled), DATE (days) and DATETIME (microseconds) are all `Int`.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// BOOLEAN.
    Bool(bool),
    /// Integral types, DECIMAL (unscaled), DATE (days since epoch), DATETIME (µs since epoch).
    Int(i128),
    /// FLOAT and DOUBLE.
    Float(f64),
    /// CHAR, VARCHAR, STRING.
    Str(String),
}

impl Eq for Value {}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Value {
    /// Values of one column compare naturally; values of different kinds (never compared by the
    /// engine) order by kind so the order stays total.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => a.total_cmp(b),
            (Value::Str(a), Value::Str(b)) => a.cmp(b),
            _ => self.kind().cmp(&other.kind()),
        }
    }
}

const EPOCH_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("1970-01-01 is a date"),
};

impl Value {
    fn kind(&self) -> u8 {
        match self {
            Value::Bool(_) => 0,
            Value::Int(_) => 1,
            Value::Float(_) => 2,
            Value::Str(_) => 3,
        }
    }

    /// Parses a SQL literal (without quotes) as a value of `column_type`.
    pub fn parse(text: &str, column_type: &ColumnType) -> Result<Value> {
        let bad = |reason: &str| Error::InvalidValue {
            value: text.chars().take(64).collect(),
            column_type: column_type.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = text.trim();
        let int_in = |lo: i128, hi: i128| -> Result<Value> {
            let v: i128 = trimmed.parse().map_err(|_| bad("not an integer"))?;
            if v < lo || v > hi {
                return Err(bad("out of range"));
            }
            Ok(Value::Int(v))
        };
        match column_type {
            ColumnType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(Value::Bool(true)),
                "false" | "0" => Ok(Value::Bool(false)),
                _ => Err(bad("not a boolean")),
            },
            ColumnType::TinyInt => int_in(i8::MIN.into(), i8::MAX.into()),
            ColumnType::SmallInt => int_in(i16::MIN.into(), i16::MAX.into()),
            ColumnType::Int => int_in(i32::MIN.into(), i32::MAX.into()),
            ColumnType::BigInt => int_in(i64::MIN.into(), i64::MAX.into()),
            ColumnType::LargeInt => {
                let limit = 10i128.pow(38) - 1;
                int_in(-limit, limit)
            }
            ColumnType::Float | ColumnType::Double => trimmed
                .parse::<f64>()
                .map(Value::Float)
                .map_err(|_| bad("not a number")),
            ColumnType::Decimal { precision, scale } => parse_decimal(trimmed, *precision, *scale)
                .map(Value::Int)
                .ok_or_else(|| bad("not a decimal that fits the precision and scale")),
            ColumnType::Char(n) | ColumnType::Varchar(n) => {
                if text.len() > *n as usize {
                    return Err(bad("longer than the column's length"));
                }
                Ok(Value::Str(text.to_string()))
            }
            ColumnType::String => Ok(Value::Str(text.to_string())),
            ColumnType::Date => {
                let date = NaiveDate::parse_from_str(trimmed, "%Y-%m-%d")
                    .map_err(|_| bad("not a date (YYYY-MM-DD)"))?;
                Ok(Value::Int(i128::from((date - EPOCH_DATE).num_days())))
            }
            ColumnType::Datetime => {
                let dt = NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%d %H:%M:%S%.f")
                    .or_else(|_| NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%dT%H:%M:%S%.f"))
                    .or_else(|_| {
                        NaiveDate::parse_from_str(trimmed, "%Y-%m-%d")
                            .map(|d| d.and_time(chrono::NaiveTime::MIN))
                    })
                    .map_err(|_| bad("not a datetime (YYYY-MM-DD HH:MM:SS)"))?;
                Ok(Value::Int(i128::from(dt.and_utc().timestamp_micros())))
            }
        }
    }

    /// The SQL literal text of this value as a `column_type` (no quotes); inverse of `parse`.
    pub fn to_literal(&self, column_type: &ColumnType) -> String {
        match (self, column_type) {
            (Value::Int(days), ColumnType::Date) => i64::try_from(*days)
                .ok()
                .and_then(|d| EPOCH_DATE.checked_add_signed(chrono::TimeDelta::try_days(d)?))
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| days.to_string()),
            (Value::Int(micros), ColumnType::Datetime) => i64::try_from(*micros)
                .ok()
                .and_then(chrono::DateTime::from_timestamp_micros)
                .map(|dt| {
                    let naive = dt.naive_utc();
                    if naive.and_utc().timestamp_subsec_micros() == 0 {
                        naive.format("%Y-%m-%d %H:%M:%S").to_string()
                    } else {
                        naive.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
                    }
                })
                .unwrap_or_else(|| micros.to_string()),
            (Value::Int(unscaled), ColumnType::Decimal { scale, .. }) if *scale > 0 => {
                format_decimal(*unscaled, *scale)
            }
            (Value::Int(v), _) => v.to_string(),
            (Value::Bool(b), _) => b.to_string(),
            (Value::Float(v), _) => v.to_string(),
            (Value::Str(s), _) => s.clone(),
        }
    }

    /// The value at `row` of an array of the column's Arrow type; `None` for NULL.
    pub fn from_array(array: &dyn Array, row: usize) -> Option<Value> {
        if row >= array.len() || array.is_null(row) {
            return None;
        }
        Some(match array.data_type() {
            DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
            DataType::Int8 => Value::Int(array.as_primitive::<Int8Type>().value(row).into()),
            DataType::Int16 => Value::Int(array.as_primitive::<Int16Type>().value(row).into()),
            DataType::Int32 => Value::Int(array.as_primitive::<Int32Type>().value(row).into()),
            DataType::Int64 => Value::Int(array.as_primitive::<Int64Type>().value(row).into()),
            DataType::Decimal128(_, _) => {
                Value::Int(array.as_primitive::<Decimal128Type>().value(row))
            }
            DataType::Float32 => {
                Value::Float(array.as_primitive::<Float32Type>().value(row).into())
            }
            DataType::Float64 => Value::Float(array.as_primitive::<Float64Type>().value(row)),
            DataType::Date32 => Value::Int(array.as_primitive::<Date32Type>().value(row).into()),
            DataType::Timestamp(TimeUnit::Microsecond, _) => Value::Int(
                array
                    .as_primitive::<TimestampMicrosecondType>()
                    .value(row)
                    .into(),
            ),
            DataType::Utf8 => Value::Str(array.as_string::<i32>().value(row).to_string()),
            _ => return None,
        })
    }

    /// A one-element array holding this value as `column_type`, for comparison kernels.
    pub fn to_array(&self, column_type: &ColumnType) -> Result<ArrayRef> {
        use arrow::array::*;
        Ok(match (self, column_type) {
            (Value::Bool(b), ColumnType::Boolean) => Arc::new(BooleanArray::from(vec![*b])),
            (Value::Float(v), ColumnType::Float) => Arc::new(Float32Array::from(vec![*v as f32])),
            (Value::Float(v), ColumnType::Double) => Arc::new(Float64Array::from(vec![*v])),
            (Value::Str(s), t) if t.is_string() => Arc::new(StringArray::from(vec![s.as_str()])),
            (Value::Int(v), t) => {
                let data_type = t.arrow_type();
                let out_of_range = || Error::InvalidValue {
                    value: v.to_string(),
                    column_type: t.to_string(),
                    reason: "out of range".into(),
                };
                match t {
                    ColumnType::TinyInt => Arc::new(Int8Array::from(vec![
                        i8::try_from(*v).map_err(|_| out_of_range())?,
                    ])) as ArrayRef,
                    ColumnType::SmallInt => Arc::new(Int16Array::from(vec![
                        i16::try_from(*v).map_err(|_| out_of_range())?,
                    ])),
                    ColumnType::Int => Arc::new(Int32Array::from(vec![
                        i32::try_from(*v).map_err(|_| out_of_range())?,
                    ])),
                    ColumnType::BigInt => Arc::new(Int64Array::from(vec![
                        i64::try_from(*v).map_err(|_| out_of_range())?,
                    ])),
                    ColumnType::Date => Arc::new(Date32Array::from(vec![
                        i32::try_from(*v).map_err(|_| out_of_range())?,
                    ])),
                    ColumnType::Datetime => Arc::new(TimestampMicrosecondArray::from(vec![
                        i64::try_from(*v).map_err(|_| out_of_range())?,
                    ])),
                    ColumnType::LargeInt | ColumnType::Decimal { .. } => {
                        Arc::new(Decimal128Array::from(vec![*v]).with_data_type(data_type))
                    }
                    _ => return Err(out_of_range()),
                }
            }
            _ => {
                return Err(Error::InvalidValue {
                    value: format!("{self:?}"),
                    column_type: column_type.to_string(),
                    reason: "wrong kind of value for the column".into(),
                });
            }
        })
    }
}

/// Parses `-12.345` into an unscaled integer with `scale` digits after the point.
fn parse_decimal(text: &str, precision: u8, scale: u8) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if frac_part.len() > scale as usize {
        return None;
    }
    let int_digits = int_part.trim_start_matches('0');
    if int_digits.len() + scale as usize > precision as usize {
        return None;
    }
    let mut unscaled: i128 = 0;
    for b in int_digits.bytes().chain(frac_part.bytes()) {
        unscaled = unscaled
            .checked_mul(10)?
            .checked_add(i128::from(b - b'0'))?;
    }
    for _ in frac_part.len()..scale as usize {
        unscaled = unscaled.checked_mul(10)?;
    }
    Some(if negative { -unscaled } else { unscaled })
}

fn format_decimal(unscaled: i128, scale: u8) -> String {
    let negative = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = if digits.len() <= scale {
        format!("{}{}", "0".repeat(scale + 1 - digits.len()), digits)
    } else {
        digits
    };
    let (int_part, frac_part) = padded.split_at(padded.len() - scale);
    format!("{}{int_part}.{frac_part}", if negative { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_through_their_sql_spelling() {
        for t in [
            ColumnType::Boolean,
            ColumnType::LargeInt,
            ColumnType::Decimal {
                precision: 10,
                scale: 2,
            },
            ColumnType::Char(3),
            ColumnType::Varchar(20),
            ColumnType::Datetime,
        ] {
            assert_eq!(t.to_string().parse::<ColumnType>().unwrap(), t);
        }
        assert!("DECIMAL(39,1)".parse::<ColumnType>().is_err());
        assert!("VARCHAR(0)".parse::<ColumnType>().is_err());
        assert!("BLOB".parse::<ColumnType>().is_err());
        assert!("INT(".parse::<ColumnType>().is_err());
    }

    #[test]
    fn literals_round_trip() {
        let cases = [
            (ColumnType::Date, "2025-03-01"),
            (ColumnType::Datetime, "2025-03-01 12:34:56"),
            (ColumnType::Datetime, "2025-03-01 12:34:56.000123"),
            (
                ColumnType::Decimal {
                    precision: 10,
                    scale: 2,
                },
                "-0.05",
            ),
            (ColumnType::BigInt, "-9223372036854775808"),
            (ColumnType::Varchar(5), "héllo".get(0..5).unwrap_or("h")),
        ];
        for (t, text) in cases {
            let v = Value::parse(text, &t).unwrap();
            assert_eq!(v.to_literal(&t), text, "{t}");
        }
        assert_eq!(
            Value::parse("2025-03-01", &ColumnType::Datetime).unwrap(),
            Value::parse("2025-03-01 00:00:00", &ColumnType::Datetime).unwrap()
        );
    }

    #[test]
    fn bad_literals_are_typed_errors() {
        assert!(matches!(
            Value::parse("128", &ColumnType::TinyInt),
            Err(Error::InvalidValue { .. })
        ));
        assert!(matches!(
            Value::parse("2025-13-01", &ColumnType::Date),
            Err(Error::InvalidValue { .. })
        ));
        assert!(matches!(
            Value::parse(
                "1.234",
                &ColumnType::Decimal {
                    precision: 5,
                    scale: 2
                }
            ),
            Err(Error::InvalidValue { .. })
        ));
        assert!(matches!(
            Value::parse("abcdef", &ColumnType::Varchar(3)),
            Err(Error::InvalidValue { .. })
        ));
    }
}
