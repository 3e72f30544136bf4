//! Results as text: an aligned table, RFC 4180 CSV with a header, or one JSON object per row.

use std::io::Write;

use arrow::array::Array;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use comfy_table::{Table, presets::ASCII_FULL};

use crate::error::{Result, SqlError};
use crate::result::QueryResult;

/// How the shell prints results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Boxes, as the MySQL client prints them.
    #[default]
    Table,
    /// RFC 4180: a header row, then one row per line.
    Csv,
    /// One JSON object per row, one per line.
    Json,
}

fn io(source: std::io::Error) -> SqlError {
    SqlError::Io {
        context: "writing results".into(),
        source,
    }
}

/// The cells of a result set as strings (`None` for NULL).
pub fn cells(result: &QueryResult) -> Result<Vec<Vec<Option<String>>>> {
    let options = FormatOptions::default()
        .with_null("NULL")
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"));
    let mut rows = Vec::with_capacity(result.row_count());
    for batch in &result.batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(c, f)| (!c.is_null(row)).then(|| f.value(row).to_string()))
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// Prints one result in `format`. A statement without a result set prints a MySQL-style
/// `Query OK` line in table format and nothing otherwise, so CSV and JSON output stays
/// machine-readable.
pub fn write(out: &mut dyn Write, result: &QueryResult, format: Format) -> Result<()> {
    if !result.has_result_set() {
        if format == Format::Table {
            let rows = result.affected_rows.unwrap_or(0);
            writeln!(out, "Query OK, {rows} rows affected").map_err(io)?;
        }
        return Ok(());
    }
    let names: Vec<&str> = result
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let rows = cells(result)?;
    match format {
        Format::Table => {
            let mut table = Table::new();
            table.load_preset(ASCII_FULL);
            table.set_header(names.iter().copied());
            for row in &rows {
                table.add_row(row.iter().map(|c| c.as_deref().unwrap_or("NULL")));
            }
            writeln!(out, "{table}").map_err(io)?;
            let n = rows.len();
            writeln!(out, "{n} row{} in set", if n == 1 { "" } else { "s" }).map_err(io)?;
        }
        Format::Csv => {
            let line = |cells: Vec<String>| cells.join(",");
            writeln!(
                out,
                "{}",
                line(names.iter().map(|n| csv_field(n)).collect())
            )
            .map_err(io)?;
            for row in &rows {
                let fields = row
                    .iter()
                    .map(|c| c.as_deref().map(csv_field).unwrap_or_default())
                    .collect();
                writeln!(out, "{}", line(fields)).map_err(io)?;
            }
        }
        Format::Json => {
            // Members in column order (a serde_json map would sort them by name).
            for row in &rows {
                let members: Vec<String> = names
                    .iter()
                    .zip(row)
                    .zip(result.schema.fields())
                    .map(|((name, cell), field)| {
                        let value = json_value(cell.as_deref(), field.data_type());
                        format!("{}:{value}", serde_json::Value::String(name.to_string()))
                    })
                    .collect();
                writeln!(out, "{{{}}}", members.join(",")).map_err(io)?;
            }
        }
    }
    Ok(())
}

/// A CSV field, quoted when RFC 4180 requires it. NULL is an empty field.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// Numbers and booleans as JSON numbers and booleans, everything else as strings.
fn json_value(cell: Option<&str>, data_type: &arrow::datatypes::DataType) -> serde_json::Value {
    let Some(text) = cell else {
        return serde_json::Value::Null;
    };
    if data_type.is_integer() || data_type.is_floating() {
        if let Ok(n) = serde_json::from_str::<serde_json::Number>(text) {
            return serde_json::Value::Number(n);
        }
    } else if *data_type == arrow::datatypes::DataType::Boolean {
        return serde_json::Value::Bool(text == "true");
    }
    serde_json::Value::String(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
